"""Run the course's notebooks top to bottom and print how long each one took.

    .venv/bin/python scripts/run_notebooks.py               # every notebook, full (default) mode
    .venv/bin/python scripts/run_notebooks.py --mode fast   # or capped: full sizes, few steps
    .venv/bin/python scripts/run_notebooks.py 06 07 A1      # only these (by number or file name)

Full mode is what learners run; its times are the ones in the README's course map.
Outputs go to a temporary folder and never into the notebooks. A failure names the
notebook and cell, and the run goes on with the next notebook; the exit status is 1
if any failed. ``--json FILE`` also writes the times, with the device they ran on.

Next to the wall time it prints the CPU time the kernel used (POSIX only) and the load
average: on a busy machine the wall time grows, the CPU time much less.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

from course_lib.notebook import MODES, NotebookFailed, execute
from course_lib.runtime import device_name, pick_device

ROOT = Path(__file__).resolve().parent.parent


def _children_cpu_s() -> float:
    """CPU seconds used so far by finished child processes (the kernels); NaN off POSIX."""
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", help="numbers or names (default: all)")
    parser.add_argument("--mode", choices=sorted(MODES), default="full")
    parser.add_argument("--json", type=Path, help="also write the times to this file")
    args = parser.parse_args(argv)
    paths = [p for pattern in ("[0-9][0-9]_*.ipynb", "A[0-9]_*.ipynb")  # the course, then the appendices
             for p in sorted((ROOT / "notebooks").glob(pattern))]
    if args.notebooks:
        paths = [p for p in paths if any(p.name.startswith(n) or p.stem == n for n in args.notebooks)]
        if not paths:
            print(f"no notebook matches {args.notebooks}", file=sys.stderr)
            return 2
    device = pick_device()
    where = f"{device_name(device)}, {torch.get_num_threads()} threads, Python {platform.python_version()}"
    print(f"{args.mode} mode on {where}", flush=True)
    results, failed = [], 0
    for path in paths:
        cpu_before = _children_cpu_s()
        with tempfile.TemporaryDirectory() as work:
            try:
                _, seconds = execute(path, work, mode=args.mode, cell_timeout=None)
                status = "ok"
            except NotebookFailed as e:
                seconds, status, failed = float("nan"), str(e), failed + 1
        cpu = _children_cpu_s() - cpu_before
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        results.append({"notebook": path.stem, "seconds": seconds, "kernel_cpu_s": cpu, "load_1min": load,
                        "status": status})
        shown = (f"{seconds / 60:6.1f} min (kernel CPU {cpu / 60:5.1f} min, load {load:4.1f})"
                 if status == "ok" else "FAILED")
        print(f"{path.stem:32s} {shown}" + ("" if status == "ok" else f"  {status}"), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"mode": args.mode, "device": where, "results": results}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
