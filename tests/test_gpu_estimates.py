"""The course map's GPU column: estimated for a T4, labelled so, and replaced by a device run's measurements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from course_lib import gpu_estimates, notebook


def test_every_cell_of_the_gpu_column_says_estimated_or_measured() -> None:
    for stem, _, _, cpu in notebook.COURSE_MAP:
        cell = gpu_estimates.gpu_column(stem, cpu)
        assert "(estimated, T4)" in cell or "(measured, " in cell, cell
    rows = notebook.course_map_markdown().splitlines()[2:]
    assert all("estimated, T4" in row or "measured" in row for row in rows)


def test_the_estimates_come_from_each_notebooks_work() -> None:
    """The GPU notebooks are estimated item by item; the CPU-sized ones take their CPU time."""
    stems = {row[0] for row in notebook.COURSE_MAP}
    assert set(gpu_estimates.WORK) <= stems
    assert {"05_gpt2_model", "06_training", "07_decoding_strategies", "08_attention_visualization",
            "09_fine_tuning", "10_scaling_up", "11_beyond_gpt2"} <= set(gpu_estimates.WORK)
    assert gpu_estimates.estimate_seconds("03_attention", 0.1) == pytest.approx(6.0)
    # GPT-2's fine-tuning in notebook 10: 20 steps of 32 x 1,024 tokens at 0.86 GFLOP each, 10 TFLOP/s
    item = next(i for i in gpu_estimates.WORK["10_scaling_up"] if i.what.startswith("fine-tuning"))
    assert item.seconds() == pytest.approx(20 * 32 * 1024 * 0.86e9 / 10e12 + 20 * (2e-3 + 12e-3))
    # a small model is bound by launches, not FLOPs: 800 steps of a 2-layer model, 3.2 s of launches
    small = gpu_estimates.Item("x", steps=800, tokens=2048, flops=1e6, layers=2)
    assert small.seconds() == pytest.approx(800 * 4e-3 + 800 * 2048 * 1e6 / 4e12)


def test_a_device_run_replaces_the_estimates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    measured = tmp_path / "notebook_times.json"
    measured.write_text(json.dumps({"gpu": "NVIDIA H100 80GB HBM3", "minutes": {"10_scaling_up": 2.34}}))
    monkeypatch.setattr(gpu_estimates, "MEASURED_FILE", measured)
    assert gpu_estimates.gpu_column("10_scaling_up", "0.9") == "2.3 min (measured, NVIDIA H100 80GB HBM3)"
    assert gpu_estimates.gpu_column("07_decoding_strategies", "0.3").endswith("(estimated, T4)")
    measured.write_text(json.dumps({"gpu": "x86_64 CPU", "dry_run": True, "minutes": {"10_scaling_up": 0.5}}))
    assert gpu_estimates.gpu_column("10_scaling_up", "0.9").endswith("(estimated, T4)")  # a dry run measures nothing
