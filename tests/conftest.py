"""Shared test setup: offline, fast, seeded, and nothing written into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHAKESPEARE = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"  # course dev machines only
# Where no Tiny Shakespeare is on the machine (a user's fresh clone, offline), the Shakespeare tests run
# on the text the repository already ships, data/train.txt: Tiny Shakespeare itself is never committed.
SHAKESPEARE_STAND_IN = ROOT / "data" / "train.txt"

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


def _full_shakespeare() -> Path | None:
    """The whole, sha256-verified Tiny Shakespeare where this machine has one, else None.

    Looked for before any test changes the environment: the dev machines' shared copy,
    the file named by ``COURSE_SHAKESPEARE``, and the copy ``load_corpus`` downloaded and
    cached (``runtime.data_dir()``, the checkout's ``data/`` by default).
    """
    from course_lib import data, runtime

    candidates = [SHAKESPEARE, runtime.data_dir() / data.SHAKESPEARE_FILE]
    if os.environ.get(data.SHAKESPEARE_ENV, "").strip():
        candidates.insert(1, Path(os.environ[data.SHAKESPEARE_ENV]).expanduser())
    for p in candidates:
        if p.is_file() and data.corpora._shakespeare_ok(p.read_bytes()):
            return p
    return None


FULL_SHAKESPEARE = _full_shakespeare()


@pytest.fixture
def shakespeare_path() -> Path:
    """Tiny Shakespeare: the whole verified file where there is one, else data/train.txt.

    Tests check ``shakespeare_path == SHAKESPEARE_STAND_IN`` for figures that differ, so a
    user's fresh clone runs every Shakespeare test (on the stand-in) instead of skipping it.
    """
    return FULL_SHAKESPEARE or SHAKESPEARE_STAND_IN


@pytest.fixture(autouse=True)
def _fresh_exercise_attempts() -> None:
    """Every test starts at the first rung of each exercise's hint ladder."""
    import sys

    core = sys.modules.get("course_lib.checks._core")
    if core is not None:
        core.reset_attempts()
