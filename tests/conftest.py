"""Shared test setup: offline, fast, seeded, and nothing written into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"

# The whole suite runs with no network and in fast mode.
os.environ.setdefault("COURSE_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("COURSE_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``cuda`` need a CUDA GPU: skip them, saying so, where there is none."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run `pytest -m cuda` on a machine with one)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _course_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point outputs (and downloads) at temporary folders for every test."""
    monkeypatch.setenv("COURSE_OUTPUT_DIR", str(tmp_path_factory.mktemp("outputs")))


@pytest.fixture
def shakespeare_path() -> Path:
    """The shared Tiny Shakespeare copy; the test is skipped when it is absent."""
    if not SHAKESPEARE.is_file():
        pytest.skip(f"Tiny Shakespeare not found at {SHAKESPEARE} (only present on course dev machines)")
    return SHAKESPEARE


@pytest.fixture(autouse=True)
def _fresh_exercise_attempts() -> None:
    """Every test starts at the first rung of each exercise's hint ladder."""
    import sys

    core = sys.modules.get("course_lib.checks._core")
    if core is not None:
        core.reset_attempts()

