"""course_lib.runtime: device choice, precision, seeding, fast mode, folders, setup()."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import course_lib
from course_lib import runtime
from course_lib.errors import CourseInputError


def test_pick_device_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_mps_available", lambda: False)
    assert runtime.pick_device() == torch.device("cpu")
    monkeypatch.setattr(runtime, "_mps_available", lambda: True)
    assert runtime.pick_device() == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.pick_device() == torch.device("cuda")


def test_course_device_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.pick_device() == torch.device("cpu")


def test_unknown_or_unavailable_device_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    with pytest.raises(CourseInputError, match="'tpu' is not one of cpu, cuda, mps"):
        runtime.pick_device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(CourseInputError, match="CUDA is not available"):
        runtime.pick_device("cuda")


def test_autocast_dtype_follows_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    assert runtime.autocast_dtype("cpu") is None
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))  # T4
    assert runtime.autocast_dtype("cuda") is torch.float16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))  # H100
    assert runtime.autocast_dtype("cuda") is torch.bfloat16


def test_seed_everything_repeats_python_numpy_and_torch() -> None:
    def draw() -> tuple:
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    runtime.seed_everything(7)
    first = draw()
    runtime.seed_everything(7)
    assert draw() == first
    runtime.seed_everything(8)
    assert draw() != first


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_fast_mode_reads_course_fast(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("COURSE_FAST", value)
    assert runtime.fast_mode() is expected


def test_in_colab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not runtime.in_colab()
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20260101")
    assert runtime.in_colab()


def test_output_and_data_dirs_follow_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    assert runtime.output_dir() == tmp_path / "out" and (tmp_path / "out").is_dir()
    assert runtime.data_dir() == tmp_path / "data" and (tmp_path / "data").is_dir()


def test_offline_in_tests() -> None:
    assert runtime.offline()


def test_every_required_package_is_installed() -> None:
    found = runtime.check_environment()
    assert set(found) >= {"torch", "transformers", "tokenizers", "jupyterlab", "matplotlib", "ipywidgets", "bertviz"}
    assert all(found.values()), {k: v for k, v in found.items() if not v}


def test_the_environment_check_lists_every_declared_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    """Notebook 00's list is pyproject's [project] dependencies, all of them, in order."""
    import re
    from importlib import metadata

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the TOML parser pip carries
        from pip._vendor import tomli as tomllib

    root = Path(runtime.__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lab = project["optional-dependencies"]["lab"]  # JupyterLab, RISE, Voilà: not on Colab
    declared = project["dependencies"] + lab
    names = [re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in declared]
    assert len(names) >= 15 and "pillow" in names and "peft" in names and "jupyterlab" in names[-len(lab):]
    assert runtime.required_packages() == names
    assert list(runtime.check_environment()) == names
    assert runtime.required_packages(include_lab=False) == names[:-len(lab)]
    # installed without a checkout (Colab, pip install): the distribution's metadata says the same
    monkeypatch.setattr(runtime, "repo_root", lambda: None)
    installed = [re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in metadata.requires("gpt2-course")
                 if "extra ==" not in r or "'lab'" in r or '"lab"' in r]
    assert runtime.required_packages() == installed
    assert set(installed) == set(names), "the installed gpt2-course is stale: pip install -e ."


def test_setup_prints_the_environment_block(capsys: pytest.CaptureFixture[str]) -> None:
    device = course_lib.setup(seed=3)
    out = capsys.readouterr().out
    assert isinstance(device, torch.device)
    assert f"torch {torch.__version__}" in out
    assert f"device: {device}" in out and "precision: fp32" in out
    assert "fast mode: ON" in out


def test_setup_from_the_command_line() -> None:
    """The issue's acceptance command: python -c "import course_lib; course_lib.setup()"."""
    out = subprocess.run(
        [sys.executable, "-c", "import course_lib; course_lib.setup()"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    assert "gpt2-course" in out and "device:" in out and "precision:" in out


def test_import_course_lib_is_lazy() -> None:
    code = "import sys, course_lib; print('transformers' in sys.modules, 'course_lib.model' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["False", "False"]


def test_set_tf32_turns_it_on_and_off_with_one_api() -> None:
    matmul, conv = torch.backends.cuda.matmul, getattr(torch.backends.cudnn, "conv", None)
    if not hasattr(matmul, "fp32_precision"):
        pytest.skip("this PyTorch has only the older TF32 switches")
    before = (matmul.fp32_precision, conv.fp32_precision if conv is not None else None)
    try:
        runtime.set_tf32(True)
        assert runtime.tf32_enabled()
        runtime.set_tf32(False)
        assert not runtime.tf32_enabled()
        runtime.set_tf32(True)  # the same switches again: no mix of the older and newer ones
        assert runtime.tf32_enabled()
    finally:  # as they were
        matmul.fp32_precision = before[0]
        if conv is not None:
            conv.fp32_precision = before[1]
    assert runtime.tf32_enabled() == (before[0] == "tf32")


def test_quiet_native_stderr_drops_what_c_code_writes_to_descriptor_2_and_only_inside() -> None:
    """The profiler's USDT lines are written to descriptor 2 from C++: the block drops such writes, nothing else."""
    code = ("import os, sys\nfrom course_lib import runtime\n"
            "os.write(2, b'before\\n')\n"
            "with runtime.quiet_native_stderr():\n    os.write(2, b'USDT: profiler_start\\n')\n"
            "os.write(2, b'after\\n')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.splitlines() == ["before", "after"]


def test_the_memory_count_of_notebook_09_prints_no_profiler_lines() -> None:
    """`memory.step_memory` on the CPU uses torch.profiler, whose C++ side prints USDT lines by itself."""
    code = ("import torch\nfrom course_lib import memory\nfrom course_lib.model import GPT, GPTConfig\n"
            "m = GPT(GPTConfig(vocab_size=50, n_positions=8, n_embd=16, n_layer=1, n_head=2))\n"
            "print(memory.step_memory(m, torch.randint(0, 50, (2, 8))).peak_bytes > 0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    assert out.stderr == "", out.stderr


def test_threads_for_runs_a_small_cpu_model_on_one_thread_for_the_block_only() -> None:
    before = torch.get_num_threads()
    small = torch.nn.Linear(8, 8)
    with runtime.threads_for(small):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    big = torch.nn.Embedding(runtime.SMALL_MODEL_PARAMETERS // 16 + 1, 16)  # just above the line
    with runtime.threads_for(big):
        assert torch.get_num_threads() == before
    assert torch.get_num_threads() == before


def test_setup_drops_the_known_stack_noise_and_nothing_else() -> None:
    """transformers' "loss_type=None" line and peft's FutureWarning go; other log lines and warnings stay."""
    code = ("import logging, warnings\nfrom course_lib import runtime\nruntime.quiet_the_stack()\n"
            "logging.basicConfig(format='%(message)s')\nlog = logging.getLogger('transformers.modeling_utils')\n"
            "log.warning('`loss_type=None` was set in the config but it is unrecognized. Using the default loss')\n"
            "log.warning('something else')\n"
            "warnings.warn('`is_gradient_checkpointing` is deprecated and will be removed in v6.', FutureWarning)\n"
            "warnings.warn('another deprecation', FutureWarning)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "loss_type" not in out.stderr and "is_gradient_checkpointing" not in out.stderr
    assert "something else" in out.stderr and "another deprecation" in out.stderr
