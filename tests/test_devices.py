"""Tensors follow their module's device and dtype: the GPU bugs a CPU can still catch.

A module that makes a tensor with ``torch.randn(...)`` and no ``device=`` works on a CPU
and breaks on every GPU (Colab's T4 included), because the tensor is born on the CPU
while the model lives on ``cuda``. Two checks find that without a GPU:

- a static one over every notebook cell and every ``course_lib`` module: inside a
  method of an ``nn.Module`` subclass, each torch factory call names its device;
- a dynamic one: the notebooks' own modules are built around a base layer on the
  ``meta`` device in float64, and every parameter and buffer must follow it.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
FACTORIES = {
    "randn", "rand", "randint", "randperm", "zeros", "ones", "empty", "full", "arange", "eye",
    "linspace", "tensor", "as_tensor", "tril", "triu",
}


def _code_cells(path: Path) -> list[tuple[int, str]]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        lines = "".join(cell["source"]).splitlines()
        # IPython magics (%pip, !cmd) are not Python: keep the indentation, drop the command
        lines = [ln[: len(ln) - len(ln.lstrip())] + "pass" if ln.lstrip().startswith(("%", "!")) else ln
                 for ln in lines]
        cells.append((i, "\n".join(lines)))
    return cells


def _is_module_class(node: ast.ClassDef) -> bool:
    """`class X(nn.Module)`, `class X(torch.nn.Module)` or `class X(Module)`."""
    return any(ast.unparse(b).split(".")[-1] == "Module" for b in node.bases)


def deviceless_factories(source: str) -> list[str]:
    """Torch factory calls without ``device=`` inside the methods of nn.Module subclasses."""
    found = []
    for cls in ast.walk(ast.parse(source)):
        if not (isinstance(cls, ast.ClassDef) and _is_module_class(cls)):
            continue
        for call in ast.walk(cls):
            if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Attribute):
                continue
            f = call.func
            if (isinstance(f.value, ast.Name) and f.value.id == "torch" and f.attr in FACTORIES
                    and not any(k.arg in ("device", None) for k in call.keywords)):
                found.append(f"{cls.name}, line {call.lineno}: torch.{f.attr}(...) has no device=")
    return found


def test_the_scanner_finds_the_notebook_09_bug() -> None:
    buggy = (
        "class MyLoRALinear(torch.nn.Module):\n"
        "    def __init__(self, base, r=8):\n"
        "        super().__init__()\n"
        "        self.A = torch.nn.Parameter(torch.randn(r, base.in_features))\n"
        "        self.B = torch.nn.Parameter(torch.zeros(base.out_features, r, device=base.weight.device))\n"
    )
    assert deviceless_factories(buggy) == ["MyLoRALinear, line 4: torch.randn(...) has no device="]
    fixed = buggy.replace("base.in_features))", "base.in_features, **like))")
    assert deviceless_factories(fixed) == []  # **kwargs may carry the device


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_modules_make_tensors_on_their_device(path: Path) -> None:
    bad = [f"cell {i}: {msg}" for i, src in _code_cells(path) for msg in deviceless_factories(src)]
    assert not bad, f"{path.name}: tensors made without a device break on a GPU:\n" + "\n".join(bad)


def test_course_lib_modules_make_tensors_on_their_device() -> None:
    bad = []
    for py in sorted((ROOT / "course_lib").rglob("*.py")):
        bad += [f"{py.relative_to(ROOT)}: {msg}" for msg in deviceless_factories(py.read_text(encoding="utf-8"))]
    assert not bad, "tensors made without a device break on a GPU:\n" + "\n".join(bad)


def _notebook_class(path: Path, name: str) -> type:
    """Execute the one cell of `path` that defines class `name` (up to its first use)."""
    for _, src in _code_cells(path):
        tree = ast.parse(src)
        for k, node in enumerate(tree.body):
            if isinstance(node, ast.ClassDef) and node.name == name:
                module = ast.Module(body=[n for n in tree.body[: k + 1]
                                          if isinstance(n, (ast.Import, ast.ImportFrom, ast.ClassDef))],
                                    type_ignores=[])
                namespace: dict = {"torch": torch, "nn": torch.nn, "F": torch.nn.functional}
                exec(compile(module, str(path), "exec"), namespace)  # noqa: S102 - the course's own notebook
                return namespace[name]
    raise AssertionError(f"{path.name} defines no class {name}")


@pytest.mark.parametrize("device,dtype", [("meta", torch.float32), ("cpu", torch.float64)])
def test_notebook_09_lora_layer_follows_the_base_layer(device: str, dtype: torch.dtype) -> None:
    cls = _notebook_class(ROOT / "notebooks" / "09_fine_tuning.ipynb", "ReferenceLoRALinear")
    base = torch.nn.Linear(8, 12, device=device, dtype=dtype)
    layer = cls(base, r=4, alpha=8)
    for name, t in [*layer.named_parameters(), *layer.named_buffers()]:
        assert (t.device.type, t.dtype) == (device, dtype), f"ReferenceLoRALinear.{name} is on {t.device} {t.dtype}"
    y = layer(torch.ones(2, 3, 8, device=device, dtype=dtype))
    assert (y.shape, y.device.type, y.dtype) == ((2, 3, 12), device, dtype)


@pytest.mark.cuda
def test_notebook_09_lora_layer_runs_on_cuda() -> None:
    cls = _notebook_class(ROOT / "notebooks" / "09_fine_tuning.ipynb", "ReferenceLoRALinear")
    layer = cls(torch.nn.Linear(8, 12, device="cuda"), r=4, alpha=8)
    assert layer(torch.ones(2, 8, device="cuda")).shape == (2, 12)
