"""One run on a GPU machine that checks and measures what the course does there, in at most 8 minutes.

    python scripts/device_check.py                              # on a GPU; writes outputs/device_check/
    python scripts/device_check.py --out benchmarks/device_check  # where the committed figures live
    python scripts/device_check.py --dry-run                    # the whole script on a CPU, small (the suite runs it)

In one run, each part within its own time budget (a part that no longer fits the total is
reported as skipped, never left hanging):

1. the ``cuda`` tests (``pytest -m cuda``);
2. the models the notebooks train once and cache (notebook 08's two toys), so
   that the notebook times below are a learner's later runs;
3. notebooks 06, 07, 09 and 10 in full mode, one after another, timed, and every other notebook
   in capped mode alongside them (two at a time, in their own processes: the full-mode times are
   then upper bounds); in each notebook a recorder notes every top-level module called from a
   cell whose weights are not on ``DEVICE``;
4. notebook 10's speed-up ladder on GPT-2 124M with random weights (no hub), read from its own
   full-mode run: milliseconds per step, tokens/s and MFU for every rung; notebook 07's
   KV-cache line (how the time per token grows without a cache);
5. ``benchmarks/bench_gpu.py``: the course GPT against transformers' GPT2LMHeadModel, tokens/s and
   MFU, eager and (when the budget allows) compiled.

It writes ``report.md`` (one page), ``device_check.json`` (every figure) and
``notebook_times.json`` (the full-mode minutes, the form `course_lib.gpu_estimates.MEASURED_FILE`
reads: copy it to ``benchmarks/device_check/`` to put measured times in the course map) under
``--out``. ``--dry-run`` runs every part on the CPU, small: fast mode instead of full and capped,
notebook 10 with 00 beside it instead of thirteen, bench_gpu.py's ``--quick``; it exists so the
suite can prove the script works before any GPU is at hand. The machine has no internet: the
notebooks run offline, with the course's shipped model where GPT-2 would be downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOTAL_BUDGET_S = 480  # 8 minutes on an H100 / H200
FULL = ("10_scaling_up", "07_decoding_strategies", "09_fine_tuning", "06_training")  # most wanted first
DRY_FULL = ("10_scaling_up",)  # the dry run: notebook 10 (its ladder is read), 00 beside it
DRY_CAPPED = ("00_welcome",)
PARTS_S = {"cuda tests": 60, "cached models": 90, "notebooks": 280, "bench_gpu": 50}
"""Each part's share of the 480 s, in order; a part may also use what the parts before it left unused."""
LADDER_MARK = "DEVICE_CHECK_LADDER "
PLACEMENT_MARK = "DEVICE_CHECK_PLACEMENT "

# A cell put after the setup cell of every notebook it runs: it records each top-level module call
# made from a notebook cell whose weights are not on DEVICE. On a GPU that is a model left behind.
RECORDER_CELL = r'''
import sys as _sys
import torch as _torch
_DC_SEEN, _DC_DEPTH = {}, [0]
def _dc_pre(module, args):
    _DC_DEPTH[0] += 1
    if _DC_DEPTH[0] == 1:
        frame = _sys._getframe(1)
        while frame is not None and "/torch/" in frame.f_code.co_filename.replace("\\", "/"):
            frame = frame.f_back
        name = frame.f_code.co_filename if frame is not None else ""
        if "ipykernel_" in name or name.startswith("<ipython"):  # called from a notebook cell
            p = next(module.parameters(), None)
            if p is not None and p.device.type != DEVICE.type:
                _DC_SEEN[f"{type(module).__name__} on {p.device.type}"] = _DC_SEEN.get(
                    f"{type(module).__name__} on {p.device.type}", 0) + 1
def _dc_post(module, args, out):
    _DC_DEPTH[0] -= 1
_torch.nn.modules.module.register_module_forward_pre_hook(_dc_pre)
_torch.nn.modules.module.register_module_forward_hook(_dc_post, always_call=True)
'''
REPORT_CELL = f'''
import json as _json
print({PLACEMENT_MARK!r} + _json.dumps(_DC_SEEN))
if "results" in globals() and "FLOPS_PER_TOKEN" in globals():  # notebook 10's ladder
    print({LADDER_MARK!r} + _json.dumps({{"rungs": results, "batch": BATCH, "seq": SEQ, "model": what,
                                          "peak_flops": peak, "flops_per_token": FLOPS_PER_TOKEN}}, default=str))
'''


# --------------------------------------------------------------------------- running one part
class Budget:
    """The total time left, and what each part may take of it."""

    def __init__(self, total_s: float) -> None:
        self.start, self.total_s = time.monotonic(), total_s

    def left(self) -> float:
        return self.total_s - (time.monotonic() - self.start)

    def grant(self, part: str) -> float:
        """Seconds `part` may run: all that is left but the shares of the parts after it (scaled to the total)."""
        names = list(PARTS_S)
        later = sum(PARTS_S[n] for n in names[names.index(part) + 1:]) * self.total_s / sum(PARTS_S.values())
        return max(0.0, self.left() - later)


def _run(cmd: list[str], timeout_s: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `cmd`; {"rc", "seconds", "output" (its last 4,000 characters), "timed_out"}."""
    t0 = time.monotonic()
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=max(1.0, timeout_s),
                              env={**os.environ, **(env or {})})
        rc, out, timed_out = done.returncode, done.stdout + done.stderr, False
    except subprocess.TimeoutExpired as e:
        rc, timed_out = None, True
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
    return {"rc": rc, "seconds": round(time.monotonic() - t0, 1), "output": out[-4000:], "timed_out": timed_out}


def cuda_tests(budget_s: float, dry_run: bool) -> dict[str, Any]:
    """``pytest -m cuda``: passed / failed / skipped counts, and the failures' names."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = Path(tmp) / "cuda.xml"
        files = [str(f.relative_to(ROOT)) for f in sorted((ROOT / "tests").glob("test_*.py"))
                 if "mark.cuda" in f.read_text(encoding="utf-8")]  # every file with a cuda test: no need to import all
        run = _run([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider",
                    f"--junitxml={xml}", *files], budget_s)
        counts = {"passed": 0, "failed": 0, "skipped": 0}
        failures = []
        if xml.is_file():
            for case in ET.parse(xml).getroot().iter("testcase"):
                kinds = {child.tag for child in case}
                if kinds & {"failure", "error"}:
                    counts["failed"] += 1
                    failures.append(case.get("name"))
                elif "skipped" in kinds:
                    counts["skipped"] += 1
                else:
                    counts["passed"] += 1
    return {**counts, "failures": failures, "seconds": run["seconds"], "timed_out": run["timed_out"],
            "output": run["output"] if failures or run["timed_out"] else ""}


def cached_models(budget_s: float) -> dict[str, Any]:
    """Train (or load) the models the notebooks train once, side by side."""
    jobs = {
        "character model": ("from course_lib import toys; from course_lib.data import load_corpus; "
                            "toys.cached_char_model(load_corpus(verbose=False), verbose=False)"),
        "induction model": "from course_lib import toys; toys.cached_induction_model(verbose=False)",
    }
    with ThreadPoolExecutor(len(jobs)) as pool:
        runs = dict(zip(jobs, pool.map(lambda code: _run([sys.executable, "-c", code], budget_s), jobs.values())))
    return {name: {"seconds": r["seconds"], "ok": r["rc"] == 0, "output": "" if r["rc"] == 0 else r["output"]}
            for name, r in runs.items()}


def _instrumented_copy(stem: str, folder: Path) -> Path:
    """notebooks/<stem>.ipynb with the recorder after the setup cell and the report at the end."""
    import nbformat

    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    nb.cells.insert(1, nbformat.v4.new_code_cell(RECORDER_CELL))
    nb.cells.append(nbformat.v4.new_code_cell(REPORT_CELL))
    path = folder / f"{stem}.ipynb"
    nbformat.write(nb, path)
    return path


def run_notebook(stem: str, mode: str, timeout_s: float) -> dict[str, Any]:
    """Run one notebook, instrumented, in its own process (`--_notebook`); its result as a dict."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        run = _run([sys.executable, str(Path(__file__).resolve()), "--_notebook", stem, mode, str(out)], timeout_s)
        if out.is_file():
            return json.loads(out.read_text(encoding="utf-8"))
    status = f"timed out after {timeout_s:.0f} s" if run["timed_out"] else f"exited {run['rc']}"
    return {"notebook": stem, "mode": mode, "seconds": None, "status": status, "output": run["output"][-1500:]}


def _notebook_child(stem: str, mode: str, out: Path) -> int:
    """In a child process: execute the instrumented copy, write the result (times, marks, failure)."""
    from course_lib.notebook import NotebookFailed, execute

    result: dict[str, Any] = {"notebook": stem, "mode": mode}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("COURSE_OUTPUT_DIR", str(Path(tmp) / "outputs"))
        path = _instrumented_copy(stem, Path(tmp))
        try:
            nb, seconds = execute(path, tmp, mode=mode, cell_timeout=None)
        except NotebookFailed as e:
            result.update(seconds=None, status=re.sub(r"\x1b\[[0-9;]*m", "", str(e)))  # no terminal colours
        else:
            result.update(seconds=round(seconds, 1), status="ok")
            text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                             for o in c.get("outputs", []) if o.get("output_type") == "stream")
            for line in text.splitlines():
                if line.startswith(PLACEMENT_MARK):
                    result["off_device"] = json.loads(line[len(PLACEMENT_MARK):])
                elif line.startswith(LADDER_MARK):
                    result["ladder"] = json.loads(line[len(LADDER_MARK):])
                elif "the time per token grows" in line:
                    result["kv_cache"] = line.strip()
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


def notebooks(dry_run: bool, part_s: float) -> list[dict[str, Any]]:
    """The full-mode notebooks one after another; the capped ones alongside, two at a time."""
    full = DRY_FULL if dry_run else FULL
    every = [p.stem for pattern in ("[0-9][0-9]_*.ipynb", "A[0-9]_*.ipynb")
             for p in sorted((ROOT / "notebooks").glob(pattern))]
    capped = DRY_CAPPED if dry_run else tuple(stem for stem in every if stem not in FULL)
    full_mode, capped_mode = ("fast", "fast") if dry_run else ("full", "capped")
    deadline = time.monotonic() + part_s
    def side_run(stem: str) -> dict[str, Any]:  # its time limit counts from when it starts, not when it queued
        left = deadline - time.monotonic()
        if left < 20:
            return {"notebook": stem, "mode": capped_mode, "seconds": None, "status": "skipped: budget"}
        return run_notebook(stem, capped_mode, left)

    with ThreadPoolExecutor(2) as pool:
        side = [pool.submit(side_run, s) for s in capped]
        results = []
        for stem in full:
            left = deadline - time.monotonic()
            if left < 20:
                results.append({"notebook": stem, "mode": full_mode, "seconds": None, "status": "skipped: budget"})
                continue
            results.append(run_notebook(stem, full_mode, left))
        results += [f.result() for f in side]
    return results


def bench_gpu(dry_run: bool, part_s: float) -> dict[str, Any]:
    """benchmarks/bench_gpu.py, eager then compiled (when the time left allows), each with its JSON."""
    out: dict[str, Any] = {}
    deadline = time.monotonic() + part_s
    for name, extra in (("eager", []), ("compiled", ["--compile"])):
        left = deadline - time.monotonic()
        if left < (5 if dry_run else 40):
            out[name] = {"status": "skipped: budget"}
            continue
        with tempfile.TemporaryDirectory() as tmp:
            js = Path(tmp) / "bench.json"
            run = _run([sys.executable, "benchmarks/bench_gpu.py", *extra, "--json", str(js),
                        *(["--quick"] if dry_run else [])], left)
            if js.is_file():
                out[name] = {"status": "ok", "seconds": run["seconds"], **json.loads(js.read_text(encoding="utf-8"))}
            else:
                out[name] = {"status": "timed out" if run["timed_out"] else f"exited {run['rc']}",
                             "seconds": run["seconds"], "output": run["output"][-1500:]}
        if dry_run:
            break  # --quick with --compile would compile on the CPU: not what a dry run is for
    return out


# --------------------------------------------------------------------------- the report
def _mfu(v: Any) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def report(r: dict[str, Any]) -> str:
    kind = "DRY RUN on the CPU" if r["dry_run"] else "GPU run"
    lines = [f"# Device check: {r['device']}", "",
             f"{r['when']} · torch {r['torch']} · Python {r['python']} · {kind}"
             f" · {r['seconds']:.0f} s of a {r['budget_s']:.0f} s budget", ""]
    t = r["cuda_tests"]
    lines += ["## CUDA tests", "", f"{t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped in "
              f"{t['seconds']:.0f} s" + (" (timed out)" if t["timed_out"] else "")
              + (f"; failed: {', '.join(t['failures'])}" if t["failures"] else ""), ""]
    lines += ["## Models trained once (so that notebook times are later runs)", "",
              ", ".join(f"{k} {v['seconds']:.0f} s{'' if v['ok'] else ' FAILED'}"
                        for k, v in r["cached_models"].items()),
              ""]
    lines += ["## Notebooks", "", "| notebook | mode | seconds | status | modules a cell called off DEVICE |",
              "|---|---|---:|---|---|"]
    for nb in r["notebooks"]:
        off = ", ".join(f"{k} ({n}x)" for k, n in nb.get("off_device", {}).items()) or "none"
        secs = "" if nb.get("seconds") is None else f"{nb['seconds']:.0f}"
        lines.append(f"| {nb['notebook']} | {nb['mode']} | {secs} | {nb['status'][:120]} | {off} |")
    lines += ["", "Full-mode notebooks ran one after another while the capped ones ran beside them, two at a time: "
              "the full-mode times are upper bounds. The last column lists the modules a notebook cell called with "
              "their weights off DEVICE: each should be one the notebook says it keeps on the CPU "
              "(tests/test_notebook_placement.py checks that it says so).", ""]
    lad = next((nb["ladder"] for nb in r["notebooks"] if "ladder" in nb), None)
    lines += ["## Notebook 10's ladder", ""]
    if lad is None:
        lines += ["not run (see the notebooks table)", ""]
    else:
        lines += [f"{lad['model']}, batch {lad['batch']} x {lad['seq']}, "
                  f"{lad['flops_per_token'] / 1e9:.3f} GFLOPs per token, peak "
                  + (f"{float(lad['peak_flops']) / 1e12:.0f} TFLOP/s" if lad["peak_flops"] else "unknown"),
                  "", "| rung | ms/step | tokens/s | MFU |", "|---|---:|---:|---:|"]
        for row in lad["rungs"]:
            if row.get("ms") is None:
                lines.append(f"| {row['rung']} | | | skipped: {row.get('skipped')} |")
            else:
                lines.append(f"| {row['rung']} | {row['ms']:.1f} | {row['tokens_per_s']:,.0f} "
                             f"| {_mfu(row.get('mfu'))} |")
        best = max((row for row in lad["rungs"] if row.get("mfu") is not None), key=lambda x: x["mfu"], default=None)
        lines += ["", f"Best rung: {best['rung']}, MFU {_mfu(best['mfu'])}." if best else "No MFU (no known peak).", ""]
    kv = next((nb["kv_cache"] for nb in r["notebooks"] if "kv_cache" in nb), None)
    if kv:
        lines += ["## Notebook 07's KV cache", "", kv, ""]
    lines += ["## bench_gpu.py: the course GPT against transformers", ""]
    for name, b in r["bench_gpu"].items():
        if b.get("status") != "ok":
            lines.append(f"- {name}: {b.get('status')}")
            continue
        tr = b["train"]
        lines.append(f"- {name}: {b['device']}, {b['precision']}, batch {b['batch']} x {b['seq_len']}: course "
                     f"{tr['course']['tokens_per_s']:,.0f} tokens/s (MFU {_mfu(tr['course']['mfu'])}), transformers "
                     f"{tr['transformers']['tokens_per_s']:,.0f} (MFU {_mfu(tr['transformers']['mfu'])}), "
                     f"ratio {tr['ratio']:.2f}x; greedy generation {b['generate']['course']['tokens_per_s']:,.0f} "
                     f"vs {b['generate']['transformers']['tokens_per_s']:,.0f} tokens/s")
    lines += ["", "## Skipped for the budget", "", ", ".join(r["skipped"]) or "nothing", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "outputs" / "device_check", help="folder for the report")
    p.add_argument("--dry-run", action="store_true", help="every part on the CPU, small (what the suite runs)")
    p.add_argument("--budget-s", type=float, default=TOTAL_BUDGET_S, help="the whole run's time (default 480)")
    p.add_argument("--_notebook", nargs=3, metavar=("STEM", "MODE", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._notebook:
        stem, mode, out = args._notebook
        return _notebook_child(stem, mode, Path(out))

    import torch

    from course_lib.runtime import device_name, pick_device

    os.environ.update({"COURSE_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})  # no internet
    if not args.dry_run and not torch.cuda.is_available():
        print("device_check: no CUDA GPU here; --dry-run runs the whole script small on the CPU", file=sys.stderr)
        return 2
    budget = Budget(args.budget_s)
    device = pick_device("cpu" if args.dry_run else None)
    result: dict[str, Any] = {"device": device_name(device), "dry_run": args.dry_run, "torch": torch.__version__,
                              "python": platform.python_version(), "when": time.strftime("%Y-%m-%d %H:%M"),
                              "budget_s": args.budget_s, "skipped": []}

    def part(name: str, fn: Any) -> Any:
        granted = budget.grant(name)
        if granted < 5:
            result["skipped"].append(name)
            return None
        print(f"device_check: {name} (up to {granted:.0f} s)", flush=True)
        return fn(granted)

    result["cuda_tests"] = part("cuda tests", lambda s: cuda_tests(s, args.dry_run)) or {
        "passed": 0, "failed": 0, "skipped": 0, "failures": [], "seconds": 0, "timed_out": False}
    result["cached_models"] = part("cached models", cached_models) or {}
    result["notebooks"] = part("notebooks", lambda s: notebooks(args.dry_run, s)) or []
    result["bench_gpu"] = part("bench_gpu", lambda s: bench_gpu(args.dry_run, s)) or {}
    result["seconds"] = round(budget.total_s - budget.left(), 1)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "device_check.json").write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    (args.out / "report.md").write_text(report(result), encoding="utf-8")
    times = {nb["notebook"]: round(nb["seconds"] / 60, 2) for nb in result["notebooks"]
             if nb.get("seconds") is not None and nb["mode"] == "full"}
    (args.out / "notebook_times.json").write_text(json.dumps(
        {"gpu": result["device"], "dry_run": args.dry_run, "when": result["when"], "minutes": times}, indent=1) + "\n",
        encoding="utf-8")
    print(f"device_check: {result['seconds']:.0f} s; report in {args.out / 'report.md'}")
    failed = result["cuda_tests"]["failed"] or any(nb["status"] != "ok" for nb in result["notebooks"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
