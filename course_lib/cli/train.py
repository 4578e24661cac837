"""`course train` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse

HELP = "not available yet"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the command's flags."""


def run(args: argparse.Namespace) -> int:
    """Run the command."""
    raise NotImplementedError
