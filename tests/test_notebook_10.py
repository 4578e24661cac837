"""Notebook 10's online branch: pretrained GPT-2 "from the hub", with a local GPT-2-format stand-in.

The test suite is offline, so the notebook normally fine-tunes the demo model. Here a tiny random
GPT-2-format checkpoint is placed in a fresh Hugging Face cache under the name ``gpt2``: offline,
`pretrained.load_gpt2("gpt2")` finds it there, and the notebook takes the branch learners take
online (GPT-2's tokenizer, lr 3e-5, Tiny Shakespeare or the offline corpus), in fast mode.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from course_lib.notebook import execute

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "10_scaling_up.ipynb"


def _hub_cache_with_gpt2(cache: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from course_lib.tokenizer import gpt2_tokenizer

    revision = "0" * 40
    snap = cache / "models--gpt2" / "snapshots" / revision
    snap.mkdir(parents=True)
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64)).save_pretrained(snap)
    gpt2_tokenizer().save(snap)
    (cache / "models--gpt2" / "refs").mkdir()
    (cache / "models--gpt2" / "refs" / "main").write_text(revision)


def _stream_text(nb) -> str:  # noqa: ANN001
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs if o.output_type == "stream")


@pytest.mark.notebook
def test_notebook_10_fine_tunes_gpt2_when_the_hub_has_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hf"
    _hub_cache_with_gpt2(cache)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    nb, _ = execute(NOTEBOOK, tmp_path, mode="fast", cell_timeout=300)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    text = _stream_text(nb)
    assert "GPT-2 'gpt2': 2M parameters, 2 layers x 2 heads, from " in text
    assert "demo model" not in text and "with GPT-2's tokenizer" in text
    assert "at a constant lr 3e-05" in text and "val loss: before" in text


def _cells_defining(*names: str) -> list[str]:
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    return [next(s for s in sources if name in s) for name in names]


@pytest.mark.parametrize("capability", [(7, 5), (9, 0)], ids=["T4", "H100"])
def test_the_ladder_step_runs_every_gpu_rung_on_the_cpu(capability: tuple[int, int],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The notebook's own train_step and measure, with a GPU's plan (T4: fp16 + its inline GradScaler;
    H100: TF32 and bf16), run on the CPU, where autocast does both dtypes: only compiling is left out."""
    import torch

    import course_lib
    from course_lib import ladder

    monkeypatch.setenv("COURSE_FAST", "1")
    params, ladder_sizes, step = _cells_defining("COMPILE = DEVICE.type", "ON_GPU = ", "def train_step")
    ns: dict = {"course_lib": course_lib, "DEVICE": torch.device("cpu")}
    exec(params, ns)
    ns.update(capability=None, total_mem=None, fused=True)
    exec(ladder_sizes, ns)
    exec(step, ns)
    rungs = ladder.plan_ladder("cuda", capability, compile=False)
    assert any(r.grad_scaler for r in rungs) == (capability < (8, 0))
    matmul = torch.backends.cuda.matmul
    before = getattr(matmul, "fp32_precision", None)
    try:
        for rung in rungs:
            if rung.runs:
                assert 0 < ns["measure"](rung) < 60, rung.label
    finally:
        if before is not None:
            matmul.fp32_precision = before


def test_the_inline_grad_scaler_skips_a_step_whose_gradients_overflowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """fp16's safety net as the notebook writes it: an inf gradient leaves the weights as they were."""
    import torch

    import course_lib
    from course_lib import ladder

    monkeypatch.setenv("COURSE_FAST", "1")
    (step,) = _cells_defining("def train_step")
    ns: dict = {"course_lib": course_lib, "DEVICE": torch.device("cpu")}
    exec("import math, time, dataclasses\nimport torch\nimport torch.nn.functional as F\n"
         "from course_lib import ladder, scaling\nfrom course_lib.model import GPT, GPTConfig", ns)
    exec(step, ns)
    rung = next(r for r in ladder.plan_ladder("cuda", (7, 5)) if r.grad_scaler)
    torch.manual_seed(0)
    from course_lib.model import GPT, GPTConfig

    model = GPT(GPTConfig(vocab_size=50, n_positions=8, n_embd=16, n_layer=1, n_head=2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    x = torch.randint(0, 50, (2, 8))
    with torch.no_grad():
        model.lm_head.weight[0, 0] = 6e4  # fp16 logits overflow: the loss and its gradients are inf
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    ns["train_step"](model, optimizer, scaler, x, x, rung)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items()), "an inf step was applied"
    assert scaler.get_scale() < 2.0**16  # and the scale came down


def test_the_ladder_compiles_each_model_shape_at_most_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every rung from torch.compile on keeps compile=True (`plan_ladder` carries it over), yet the notebook's
    measure() compiles a model shape once: the fused-AdamW rung reuses the compiled model with its first
    weights put back, the padded vocabulary (a new shape) compiles once more. torch.compile is replaced by
    a counting stand-in, so this runs on the CPU in seconds."""
    import types

    import torch

    import course_lib
    from course_lib import ladder, scaling

    monkeypatch.setenv("COURSE_FAST", "1")
    params, ladder_sizes, step = _cells_defining("COMPILE = DEVICE.type", "ON_GPU = ", "def train_step")
    ns: dict = {"course_lib": course_lib, "DEVICE": torch.device("cpu")}
    exec(params, ns)
    ns.update(capability=None, total_mem=None, fused=True)
    exec(ladder_sizes, ns)
    exec(step, ns)

    compiled: list[int] = []  # the vocabulary size of each model compiled

    class Compiled(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self._orig_mod = model

        def forward(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            return self._orig_mod(*args, **kwargs)

    def compile_model(model, *, trial=None, **_):  # noqa: ANN001, ANN202
        compiled.append(model.config.vocab_size)
        wrapped = Compiled(model)
        if trial is not None:
            trial(wrapped)
        return wrapped

    ns["scaling"] = types.SimpleNamespace(**{n: getattr(scaling, n) for n in dir(scaling) if not n.startswith("_")})
    ns["scaling"].compile_model = compile_model
    rungs = ladder.plan_ladder("cuda", (9, 0), compile=True)
    assert [r.compile for r in rungs][-3:] == [True, True, True]  # compile, fused AdamW, padded vocab
    loaded: list[dict] = []
    real_load = torch.nn.Module.load_state_dict
    monkeypatch.setattr(torch.nn.Module, "load_state_dict",
                        lambda self, sd, *a, **k: (loaded.append(sd), real_load(self, sd, *a, **k))[1])
    seen = {}
    for rung in rungs:
        if rung.runs:
            assert 0 < ns["measure"](rung) < 60, rung.label
            seen[rung.name] = dict(ns["COMPILED"])
    assert compiled == [50257, 50304], f"compiled model shapes, in order: {compiled}"
    model, first = seen["torch.compile"][50257]
    assert seen["fused AdamW"][50257][0] is model, "the fused-AdamW rung compiled the same shape again"
    assert loaded == [first], "the reused model did not start again from its first weights"
    assert list(seen["padded vocab"]) == [50304], "the older compiled shape was not freed"
