"""benchmarks/bench_model.py keeps working: its --quick mode runs and reports ratios (no timing asserted)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_model.py"


def test_bench_model_quick_runs_and_prints_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_model", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"ratio course / hf-default: median \d+\.\d+x", out), out
    assert re.search(r"ratio course / hf-eager: median \d+\.\d+x", out), out
    assert re.search(r"course +no checkpointing +\d+\.\d MiB \| checkpointing +\d+\.\d MiB", out), out
