"""Where the course runs: device, precision (autocast, TF32), seeding, Colab, fast mode, data folder.

Every notebook's setup cell calls `course_lib.setup()`, which uses these helpers and
prints one short block saying what was found.

Introduced in notebooks/00_welcome.ipynb; `output_dir()` in notebook 01; `data_dir()`,
`offline()` in notebook 02; `autocast()`, `fused_adamw_available()` in notebook 06; `torch_threads()`,
`trained_cache_dir()` in notebook 07; `threads_for()` in notebook 08 (through `viz` and `interp`);
`quiet_native_stderr()` in notebook 09 (through `memory`); `dtype_for_capability()`, `choose_precision()`,
TF32 in notebook 10.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import random
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import CourseInputError

_TRUE = {"1", "true", "yes", "on"}
VALID_DEVICES = ("cpu", "cuda", "mps")


def fast_mode() -> bool:
    """True when ``COURSE_FAST=1``: notebooks shrink every run to seconds."""
    return os.environ.get("COURSE_FAST", "").strip().lower() in _TRUE


def capped_mode() -> bool:
    """True when ``COURSE_CAPPED=1`` (and not fast): full-mode sizes, loops cut short.

    The test suite runs every notebook this way so that the shapes and settings of the
    default (full) mode, which learners run, are exercised in seconds.
    """
    return not fast_mode() and os.environ.get("COURSE_CAPPED", "").strip().lower() in _TRUE


CAPPED_STEPS = 3  # what `steps()` gives in capped mode


def steps(full: int, fast: int) -> int:
    """How many times a loop runs: `full` normally, `fast` with ``COURSE_FAST=1``.

    With ``COURSE_CAPPED=1`` it is at most `CAPPED_STEPS`. Use it for step counts,
    repetitions and time budgets, never for a size that sets a shape (a sequence
    length, a model width, a generation length that must fit the context).
    """
    if fast_mode():
        return fast
    if capped_mode():
        return min(full, fast, CAPPED_STEPS)
    return full


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def pick_device(preferred: str | None = None) -> torch.device:
    """The best device here: cuda, then mps, then cpu.

    `preferred` (or the ``COURSE_DEVICE`` environment variable) overrides the choice;
    asking for a device that is not available raises a `CourseInputError`.
    """
    want = preferred or os.environ.get("COURSE_DEVICE") or ""
    want = want.strip().lower()
    if want:
        kind = want.split(":")[0]
        if kind not in VALID_DEVICES:
            raise CourseInputError(
                f"device {want!r} is not one of {', '.join(VALID_DEVICES)} (from "
                f"{'COURSE_DEVICE' if not preferred else 'the device argument'})"
            )
        if kind == "cuda" and not torch.cuda.is_available():
            raise CourseInputError(f"device {want!r} asked for, but CUDA is not available here")
        if kind == "mps" and not _mps_available():
            raise CourseInputError(f"device {want!r} asked for, but Apple MPS is not available here")
        return torch.device(want)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""The precision settings a run may ask for (TrainConfig.precision, `course train --precision`)."""


def dtype_for_capability(major: int, minor: int = 0) -> torch.dtype:
    """The autocast dtype for a CUDA GPU of compute capability (major, minor).

    bf16 needs Ampere (8.0) or newer; older GPUs such as the T4 (7.5) and V100 (7.0)
    get fp16, which must be trained with a GradScaler.
    """
    return torch.bfloat16 if major >= 8 else torch.float16


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The mixed-precision dtype for `device`, or None for full fp32.

    bf16 on CUDA GPUs that support it (Ampere and newer) and on MPS; fp16 on CUDA GPUs
    without bf16, such as Colab's T4 (train with a GradScaler); None on the CPU, where
    autocast brings no speed.
    """
    kind = torch.device(device).type
    if kind == "cuda":
        return dtype_for_capability(*torch.cuda.get_device_capability(torch.device(device)))
    if kind == "mps":
        return torch.bfloat16 if hasattr(torch.backends, "mps") else None
    return None


def precision_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for a precision setting on `device`: the one place the course decides it.

    "auto" is `autocast_dtype(device)`; "fp32" is None (no autocast); "bf16" and "fp16" are
    what they say, and fp16 (which needs a GradScaler) only on a CUDA GPU.
    """
    if precision == "auto":
        return autocast_dtype(device)
    if precision not in PRECISIONS:
        raise CourseInputError(f"precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "fp16" and torch.device(device).type != "cuda":
        raise CourseInputError(f"precision=fp16 needs a CUDA GPU (device is {device}); use bf16 or fp32")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def precision_name(dtype: torch.dtype | None) -> str:
    """"fp32" (None), "bf16" or "fp16": how the course names an autocast dtype."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))


@dataclass(frozen=True)
class Precision:
    """How to train on one device: the autocast dtype (None = fp32) and whether to scale the loss."""

    dtype: torch.dtype | None
    use_grad_scaler: bool

    @property
    def name(self) -> str:
        return precision_name(self.dtype) + (" + GradScaler" if self.use_grad_scaler else "")

    def grad_scaler(self, device: torch.device | str) -> torch.amp.GradScaler | None:
        """A GradScaler for fp16, None otherwise."""
        return torch.amp.GradScaler(torch.device(device).type) if self.use_grad_scaler else None


def choose_precision(device: torch.device | str, precision: str = "auto") -> Precision:
    """bf16 where the device has it, fp16 + GradScaler on older GPUs (T4), fp32 on the CPU
    (`precision_dtype`), with the GradScaler that fp16 needs."""
    dtype = precision_dtype(precision, device)
    return Precision(dtype, use_grad_scaler=dtype == torch.float16)


def autocast(device: torch.device | str, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for `dtype` on `device`, or a no-op for fp32 (None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def _new_tf32_api() -> bool:
    return hasattr(torch.backends.cuda.matmul, "fp32_precision")


def set_tf32(on: bool) -> None:
    """Let fp32 matmuls and cuDNN convolutions use TF32 tensor cores (True), or not (False).

    The one place the course flips these switches: the newer ``fp32_precision`` ones where this
    PyTorch has them (mixing them with the older ones is an error). No effect without an
    Ampere-or-newer GPU.
    """
    value = "tf32" if on else "ieee"
    if _new_tf32_api():
        torch.backends.cuda.matmul.fp32_precision = value
        conv = getattr(torch.backends.cudnn, "conv", None)
        if conv is not None and hasattr(conv, "fp32_precision"):
            conv.fp32_precision = value
    else:  # pragma: no cover - torch < 2.9
        torch.set_float32_matmul_precision("high" if on else "highest")
        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on


def tf32_enabled() -> bool:
    """True when CUDA matmuls may use TF32 (read with the same switches `set_tf32` writes)."""
    if _new_tf32_api():
        return torch.backends.cuda.matmul.fp32_precision == "tf32"
    return bool(torch.backends.cuda.matmul.allow_tf32)  # pragma: no cover - torch < 2.9


def enable_tf32(device: torch.device | str) -> bool:
    """Turn TF32 on where `device` is a CUDA GPU that has it (Ampere and newer); True when it is on.

    Elsewhere (a CPU, MPS, a GPU older than Ampere) nothing is changed and it returns False.
    """
    dev = torch.device(device)
    if dev.type != "cuda" or not torch.cuda.is_available() or torch.cuda.get_device_capability(dev)[0] < 8:
        return False
    set_tf32(True)
    return tf32_enabled()


def fused_adamw_available(device: torch.device | str) -> bool:
    """True when ``torch.optim.AdamW(..., fused=True)`` takes a step on `device`.

    Tried on a one-element parameter, so it answers for this PyTorch build and device.
    """
    try:
        p = torch.zeros(1, device=device, requires_grad=True)
        p.grad = torch.ones_like(p)
        torch.optim.AdamW([p], lr=1e-3, fused=True).step()
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def seed_everything(seed: int = 1337) -> None:
    """Seed Python, NumPy (when installed) and torch on every device."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:  # pragma: no cover - numpy ships with the course
        pass
    torch.manual_seed(seed)  # seeds CPU, CUDA and MPS generators


def repo_root() -> Path | None:
    """The repository checkout this package runs from, or None when installed elsewhere."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file() and (here / "notebooks").is_dir():
        return here
    return None


def _course_folder(env_var: str, in_checkout: str, elsewhere: Callable[[], Path]) -> Path:
    """`env_var`'s folder when set; else the checkout's `in_checkout` folder; else `elsewhere()`. Made if missing."""
    env = os.environ.get(env_var)
    if env:
        path = Path(env).expanduser()
    elif (root := repo_root()) is not None:
        path = root / in_checkout
    else:
        path = elsewhere()
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path:
    """Where downloaded corpora are cached.

    ``COURSE_DATA_DIR`` when set; else the repository's ``data/`` folder in a checkout;
    else ``~/.cache/gpt2-course`` (Colab, or a plain ``pip install``).
    """
    return _course_folder("COURSE_DATA_DIR", "data", lambda: Path.home() / ".cache" / "gpt2-course")


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `n` PyTorch CPU threads, then restore the previous count.

    The models the course trains once and caches train on a fixed thread count, so that
    every machine makes the same float sums and so the same model.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


SMALL_MODEL_PARAMETERS = 20_000_000
"""Below this many parameters a model on the CPU runs on one thread in `threads_for`."""


@contextlib.contextmanager
def threads_for(model: torch.nn.Module) -> Iterator[None]:
    """Run the block on one CPU thread when `model` is small and on the CPU; else change nothing.

    A forward pass of a model of a few million parameters is too little work to share out:
    the threads mostly wait for each other, and on a CPU shared with another job they wait
    for it too (measured on a busy 2-core machine: a training step of a 2-layer, 64-wide
    model took 14 ms on one thread and 228 ms on two). GPT-2 (124M) and any model on a GPU
    keep the process's thread count. The measuring functions of `viz` and `interp` use it, so
    a notebook never has to set a thread count for its small models.
    """
    first = next(model.parameters(), None)
    small = first is not None and first.device.type == "cpu" and sum(
        p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS
    with torch_threads(1) if small else contextlib.nullcontext():
        yield


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Send what compiled libraries write straight to the process's stderr to nowhere while the block runs.

    PyTorch's profiler (libkineto) prints ``USDT: ... profiler_start`` and ``profiler_stop``
    lines to file descriptor 2 from C++, past `sys.stderr` and past any warnings filter; in
    a notebook, ipykernel forwards that descriptor into the cell's output. Python's own
    `sys.stderr` is left alone, so a Python error or warning in the block still shows.
    Where the process has no descriptor 2 (a windowed Python) it does nothing.
    """
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def trained_cache_dir() -> Path:
    """Where the course caches the small models it trains once: ``data_dir() / "demo_model"``.

    Notebook 08's induction and character models (`course_lib.toys`) live here, one folder
    per training setting.
    """
    return data_dir() / "demo_model"


def offline() -> bool:
    """True when the course must not touch the network (``COURSE_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``).

    The test suite sets it; a learner without internet gets the same behaviour
    automatically when a download fails.
    """
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("COURSE_OFFLINE", "HF_HUB_OFFLINE"))


def output_dir() -> Path:
    """Where notebooks write what they make (checkpoints, tokenizers, plots).

    ``COURSE_OUTPUT_DIR`` when set (the tests point it at a temporary folder); else the
    repository's ``outputs/`` folder in a checkout; else ``./outputs``.
    """
    return _course_folder("COURSE_OUTPUT_DIR", "outputs", lambda: Path.cwd() / "outputs")


def device_name(device: torch.device | str) -> str:
    """A readable name for `device`: the GPU's model, or the CPU and its core count."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    if dev.type == "mps":
        return "Apple GPU (MPS)"
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"


DISTRIBUTION = "gpt2-course"


def _pyproject_dependencies(pyproject: Path, extra: str | None = None) -> list[str]:
    """The requirement strings of ``[project] dependencies``, or of one optional extra.

    (A few lines of regex instead of a TOML parser, which Python 3.10 lacks.)
    """
    text = pyproject.read_text(encoding="utf-8")
    project = text[text.index("[project]"):]
    key = "dependencies" if extra is None else re.escape(extra)
    block = re.search(rf"^{key}\s*=\s*\[(.*?)\]\s*$", project, re.S | re.M)
    if block is None:
        raise CourseInputError(f"{pyproject}: no {'[project] dependencies' if extra is None else extra!r} list")
    return [m for line in block.group(1).splitlines() for m in re.findall(r'"([^"]+)"', line.split("#")[0])]


def required_packages(include_lab: bool | None = None) -> list[str]:
    """The names of the packages the course declares it needs, in declared order.

    Read from ``pyproject.toml`` in a checkout (the one source of truth), else from the
    installed distribution's metadata (Colab, a plain ``pip install``), so the
    environment check lists every dependency and never goes out of step. JupyterLab
    (the ``lab`` extra) counts everywhere but on Colab, which brings its own front end.
    """
    from importlib import metadata

    lab = (not in_colab()) if include_lab is None else include_lab
    root = repo_root()
    if root is not None:
        reqs = _pyproject_dependencies(root / "pyproject.toml")
        reqs += _pyproject_dependencies(root / "pyproject.toml", "lab") if lab else []
    else:
        try:
            listed = metadata.requires(DISTRIBUTION) or []
        except metadata.PackageNotFoundError:
            raise CourseInputError(
                f"the {DISTRIBUTION} distribution is not installed and no checkout was found; "
                "run `pip install -e .` from the repository root"
            ) from None
        reqs = [r for r in listed if "extra ==" not in r]
        reqs += [r for r in listed if lab and re.search(r"extra\s*==\s*['\"]lab['\"]", r)]
    return [re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r.strip()).group(0) for r in reqs]


def check_environment() -> dict[str, str | None]:
    """The installed version of each package the course needs (None when missing)."""
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in required_packages():
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def environment_report(device: torch.device | None = None) -> str:
    """The environment block that `course_lib.setup()` prints."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    try:  # read the version without importing transformers (seconds saved in every notebook)
        transformers_version = version("transformers")
    except PackageNotFoundError:
        transformers_version = "not installed"

    dev = device or pick_device()
    precision = choose_precision(dev).name
    lines = [
        f"gpt2-course {__version__} | Python {platform.python_version()} | torch {torch.__version__}"
        f" | transformers {transformers_version}",
        f"device: {dev} ({device_name(dev)}) | precision: {precision}",
        f"fast mode: {'ON (COURSE_FAST=1)' if fast_mode() else 'capped (COURSE_CAPPED=1)' if capped_mode() else 'off'}"
        f" | Colab: {'yes' if in_colab() else 'no'} | threads: {torch.get_num_threads()}",
    ]
    return "\n".join(lines)


STACK_LOG_NOISE = (
    # transformers 5 on GPT2LMHeadModel(labels=...): its loss is the default one, as it should be
    ("transformers.modeling_utils", "`loss_type=None` was set in the config but it is unrecognized"),
    # transformers' assisted generation (generate(assistant_model=...), notebook 07) calls the draft's generate
    # with a config and keyword arguments at once, then warns about itself
    ("transformers.generation.utils", "Passing `generation_config` together with generation-related"),
)
"""(logger, message start) of log lines from the libraries under the course that tell a learner nothing."""

STACK_WARNINGS = (
    # peft's PeftModel.from_pretrained asks transformers 5 an old question (notebook 09)
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
)
"""(category, message regex) of warnings the libraries under the course raise at each other, not at the learner."""


class _DropMessages(logging.Filter):
    def __init__(self, starts: tuple[str, ...]) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.starts)


def quiet_the_stack() -> None:
    """Drop the known log lines and warnings of `STACK_LOG_NOISE` and `STACK_WARNINGS`, and only those.

    Called by `setup()`: a notebook shows what the course prints and what the learner's own
    code causes, not the libraries' conversations with each other. It imports nothing: the
    filters wait on the loggers by name. tests/test_notebooks.py fails on any other such line.
    """
    import warnings

    for name in {n for n, _ in STACK_LOG_NOISE}:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(tuple(m for n, m in STACK_LOG_NOISE if n == name)))
    for category, message in STACK_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


def setup(seed: int = 1337, quiet: bool = False) -> torch.device:
    """One call at the top of every notebook: seed, set plot defaults, quiet the stack's known noise
    (`quiet_the_stack`), print the environment.

    Returns the device the notebook should use.
    """
    seed_everything(seed)
    quiet_the_stack()
    try:
        import matplotlib as mpl

        mpl.rcParams.update(
            {"figure.figsize": (7, 3.5), "figure.dpi": 90, "axes.grid": True, "grid.alpha": 0.3}
        )
    except ImportError:  # pragma: no cover
        pass
    show_figures_inline()
    if in_colab():
        enable_colab_widgets()
    device = pick_device()
    if not quiet:
        print(environment_report(device))
    return device


def show_figures_inline() -> bool:
    """In a Jupyter kernel, draw every matplotlib `Figure` a cell returns; True when enabled.

    The course's plot functions build figures without pyplot (so nothing is drawn twice),
    and IPython shows a bare `Figure` as an image only once the inline backend is on: without
    this a notebook that never imports pyplot prints ``<Figure size 630x315 with 1 Axes>``.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return False
    shell.run_line_magic("matplotlib", "inline")
    return True


def enable_colab_widgets() -> bool:
    """Let Colab draw ipywidgets 8 and bertviz (its custom widget manager); True when enabled.

    Colab's front end renders only its built-in widgets until this is called once per
    session; elsewhere it does nothing.
    """
    try:
        from google.colab import output  # type: ignore[import-not-found]
    except ImportError:
        return False
    output.enable_custom_widget_manager()
    return True
