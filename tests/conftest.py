"""Shared test setup: offline, fast, seeded, and nothing written into the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
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

    Found the way `load_corpus` finds it, offline and before any test changes the
    environment: the file named by ``COURSE_SHAKESPEARE``, else the verified copy in
    ``runtime.data_dir()`` (the checkout's ``data/`` by default, git-ignored). Nothing
    outside the repository is looked at unless that variable points there.
    """
    from course_lib import data, runtime
    from course_lib.errors import CourseInputError

    try:
        text, _ = data.corpora._find_shakespeare(allow_download=False)
    except CourseInputError:  # COURSE_SHAKESPEARE names a missing or wrong file
        return None
    if text is None:
        return None
    env = os.environ.get(data.SHAKESPEARE_ENV, "").strip()
    return Path(env).expanduser() if env else runtime.data_dir() / data.SHAKESPEARE_FILE


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
