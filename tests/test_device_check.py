"""scripts/device_check.py, the one prepared GPU run, exercised whole on the CPU with --dry-run.

The dry run goes through every part the GPU run has, small: the cuda tests (they skip here and are
counted), the cached models, notebook 10 in fast mode and 00 beside it (each in its own process,
instrumented), notebook 10's ladder read from its own output, bench_gpu.py --quick, and
the report, the JSON and the notebook times written. Marked notebook and slow: it runs notebooks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.notebook, pytest.mark.slow]


def test_the_device_check_runs_whole_on_the_cpu_as_a_dry_run(tmp_path: Path) -> None:
    out = tmp_path / "device_check"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "device_check.py"), "--dry-run", "--out", str(out),
                          "--budget-s", "1500"], capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads((out / "device_check.json").read_text(encoding="utf-8"))
    assert result["dry_run"] and not result["skipped"]
    tests = result["cuda_tests"]
    assert tests["failed"] == 0 and tests["skipped"] >= 5 and not tests["timed_out"]  # no GPU: every one skips
    assert all(m["ok"] for m in result["cached_models"].values())
    ran = {nb["notebook"]: nb for nb in result["notebooks"]}
    assert set(ran) == {"10_scaling_up", "00_welcome"}
    assert all(nb["status"] == "ok" and nb["seconds"] > 0 for nb in ran.values())
    assert all(nb["off_device"] == {} for nb in ran.values())  # on the CPU, DEVICE is the CPU: nothing is off it
    ladder = ran["10_scaling_up"]["ladder"]
    assert [r["rung"] for r in ladder["rungs"]][0] == "fp32" and any("ms" in r for r in ladder["rungs"])
    bench = result["bench_gpu"]
    assert bench["eager"]["status"] == "ok" and "compiled" not in bench  # a dry run compiles nothing
    report = (out / "report.md").read_text(encoding="utf-8")
    for heading in ("# Device check:", "## CUDA tests", "## Notebooks", "## Notebook 10's ladder", "## bench_gpu.py"):
        assert heading in report, heading
    assert "DRY RUN on the CPU" in report and "| fp32 |" in report
    times = json.loads((out / "notebook_times.json").read_text(encoding="utf-8"))
    assert times["dry_run"] and times["minutes"] == {}  # fast mode is not full mode: no times for the course map


def test_without_a_gpu_the_real_run_refuses_in_one_line(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the real run would start")
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "device_check.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 2 and run.stderr.count("\n") == 1 and "--dry-run" in run.stderr
