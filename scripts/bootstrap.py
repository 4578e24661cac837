"""Set up the course in a local virtual environment, then open it or test it.

    python3 scripts/bootstrap.py lab    # what `make lab` runs: JupyterLab on notebooks/
    python3 scripts/bootstrap.py test   # what `make test` runs: the whole test suite
    python3 scripts/bootstrap.py setup  # only create or update the environment

    python3 scripts/bootstrap.py test --versions newest  # the suite on the newest allowed releases
    python3 scripts/bootstrap.py test --versions oldest  # ... and on the oldest (tests/constraints-oldest.txt)
    python3 scripts/bootstrap.py lock   # rewrite tests/constraints.txt from the environment

Windows: ``py scripts\\bootstrap.py lab`` and ``py scripts\\bootstrap.py test``.

It creates ``.venv`` next to this repository (or reuses it), installs a CPU build of
PyTorch when the environment has no torch (a plain ``pip install torch`` on Linux
pulls a multi-GB CUDA build), then installs the course with its test tools. A second
run reuses everything and starts at once. Only the standard library is used here.

Versions: ``test`` installs exactly the versions in ``tests/constraints.txt`` (the ones
the suite was last run against), so a fresh clone tests what its authors tested.
``lab`` and Colab install from the ranges in ``pyproject.toml``. ``--versions newest``
and ``--versions oldest`` build separate environments (``.venv-newest``,
``.venv-oldest``) to run the suite at both ends of those ranges.
``test`` also installs Debian's Chromium for the browser test when it is missing and
that is possible (root with apt-get); ``lab`` turns off JupyterLab's news pop-up and
update check, which would cover the widgets in a classroom.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("COURSE_VENV", ROOT / ".venv"))
LOCK = ROOT / "tests" / "constraints.txt"
OLDEST = ROOT / "tests" / "constraints-oldest.txt"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def say(msg: str) -> None:
    print(f"[course] {msg}", flush=True)


def venv_python(venv: Path = VENV) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*cmd: str | os.PathLike, check: bool = True, quiet: bool = False, heartbeat: str | None = None) -> int:
    """Run `cmd` in the repository; with `heartbeat`, say every `HEARTBEAT_S` seconds that it is still at it."""
    kwargs = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL} if quiet else {}
    proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, **kwargs)
    start = time.monotonic()
    while True:
        try:
            code = proc.wait(timeout=HEARTBEAT_S if heartbeat else None)
            break
        except subprocess.TimeoutExpired:
            say(f"{heartbeat} ({time.monotonic() - start:.0f} s so far)")
    if check and code != 0:
        sys.exit(f"[course] command failed ({code}): {' '.join(map(str, cmd))}")
    return code


HEARTBEAT_S = 15
"""How often a long install says it is still running (pip -q prints nothing for a minute or more)."""


def has_torch(py: Path) -> bool:
    return run(py, "-c", "import torch", check=False, quiet=True) == 0


def pinned(name: str, constraints: Path | None) -> str | None:
    """The ``name==version`` line of a constraints file, if it pins `name`."""
    if constraints is None:
        return None
    for line in constraints.read_text(encoding="utf-8").splitlines():
        spec = line.split(";")[0].split("#")[0].strip()
        if spec.lower().startswith(name + "=="):
            return spec
    return None


def install_torch(py: Path, constraints: Path | None = None) -> None:
    """Install a CPU build of torch, trying the cheapest route first."""
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check"]
    spec = os.environ.get("COURSE_TORCH") or pinned("torch", constraints) or "torch"
    # 1. A torch wheel that pip is configured to find locally (find-links): no download.
    if run(*pip, "--no-index", "--no-deps", spec, check=False) == 0:
        say("installed torch from a local wheel")
        return
    # 2. macOS wheels on PyPI are CPU/MPS builds already.
    if platform.system() == "Darwin":
        run(*pip, spec)
        return
    # 3. Linux and Windows: the CPU-only index, then plain PyPI as a last resort.
    if run(*pip, "--timeout", "60", "--index-url", CPU_INDEX, spec, check=False) == 0:
        say("installed the CPU build of torch")
        return
    say(f"the CPU index ({CPU_INDEX}) could not be reached; installing torch from PyPI")
    run(*pip, spec)


def ensure_env(venv: Path = VENV, constraints: Path | None = None, upgrade: bool = False) -> Path:
    """Create or reuse `venv` and install the course into it (with `constraints`, if given)."""
    if sys.version_info < (3, 10):  # noqa: UP036 - this script may run under any python3
        sys.exit(f"[course] Python 3.10 or newer is needed; this is {platform.python_version()}")
    py = venv_python(venv)
    if not py.exists():
        say(f"creating a virtual environment in {venv}")
        _create(venv)
    stamp = venv / ".course-installed"
    parts = [(ROOT / "pyproject.toml").read_bytes(), constraints.read_bytes() if constraints else b"ranges",
             b"upgrade" if upgrade else b""]
    wanted = hashlib.sha256(b"\0".join(parts)).hexdigest()
    if stamp.exists() and stamp.read_text().strip() == wanted and has_torch(py):
        return py
    if not has_torch(py):
        install_torch(py, constraints)
    how = f"with the versions in {constraints.relative_to(ROOT)}" if constraints else "from pyproject's ranges"
    say(f"installing the course and its tools (pip install -e '.[lab,dev]', {how}): a minute or two the first "
        "time, quietly; later runs start at once")
    cmd = [py, "-m", "pip", "install", "--disable-pip-version-check", "-q", "-e", ".[lab,dev]"]
    if constraints:
        cmd += ["-c", constraints]
    if upgrade:
        cmd += ["--upgrade", "--upgrade-strategy", "eager"]
    run(*cmd, heartbeat="still installing JupyterLab, transformers and the rest")
    stamp.write_text(wanted)
    return py


def _create(path: Path) -> None:
    venv.EnvBuilder(with_pip=True).create(path)


def lock(py: Path) -> int:
    """Write tests/constraints.txt: every installed distribution, pinned (torch without +cpu)."""
    out = subprocess.run([str(py), "-m", "pip", "freeze", "--exclude-editable", "--disable-pip-version-check"],
                         capture_output=True, text=True, check=True).stdout
    lines = []
    for line in sorted(out.splitlines(), key=str.lower):
        if "==" not in line or line.lower().startswith("gpt2-course"):
            continue
        name, version = line.split("==", 1)
        lines.append(f'{name}=={version.split("+")[0]}; python_version >= "3.11"')
    header = (
        "# The versions the README's test command installs (`make test`), so a fresh clone tests\n"
        "# exactly what the suite was last run against. Learners' and Colab's installs use the\n"
        "# ranges in pyproject.toml instead. Regenerate: python scripts/bootstrap.py lock\n"
        "# (pins apply on Python 3.11+; Python 3.10 resolves pyproject's ranges)\n"
    )
    LOCK.write_text(header + "\n".join(lines) + "\n", encoding="utf-8")
    say(f"wrote {len(lines)} pins to {LOCK.relative_to(ROOT)}")
    return 0

# -- a classroom JupyterLab, and the browser the browser test drives -------------------
LAB_OVERRIDES = {  # no "get notified about news?" pop-up over the widgets, no update check
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}
LAB_OPTIONS = ["--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
FIRST_NOTEBOOK = "00_welcome.ipynb"  # what `make lab` opens
CHROMIUM = Path("/usr/bin/chromium")


def write_lab_overrides(app_settings_dir: Path) -> Path:
    """Write LAB_OVERRIDES where JupyterLab reads setting overrides at start (overrides.d)."""
    path = Path(app_settings_dir) / "overrides.d" / "gpt2-course.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(LAB_OVERRIDES, indent=2) + "\n", encoding="utf-8")
    return path


def quiet_lab(py: Path) -> None:
    """Install LAB_OVERRIDES into the environment's JupyterLab (its app settings folder)."""
    found = subprocess.run([str(py), "-c", "from jupyterlab.commands import get_app_dir; print(get_app_dir())"],
                           capture_output=True, text=True, cwd=ROOT)
    if found.returncode == 0 and found.stdout.strip():
        write_lab_overrides(Path(found.stdout.strip()) / "settings")


def kernel_options(py: Path) -> list[str]:
    """`course_lib.notebook.kernel_options()` in the environment: kernels over encrypted CurveZMQ, so
    ipykernel 7 does not warn "running over TCP without encryption" at every kernel start."""
    found = subprocess.run([str(py), "-c", "from course_lib.notebook import kernel_options; print(*kernel_options())"],
                           capture_output=True, text=True, cwd=ROOT)
    return found.stdout.split() if found.returncode == 0 else []


def ensure_browser() -> None:
    """Install Debian's Chromium for tests/test_browser.py when missing and possible (root + apt-get).

    Otherwise say so in one line and go on: that test then skips and says why.
    """
    if CHROMIUM.is_file():
        return
    if not (sys.platform == "linux" and shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0):
        say(f"no Chromium at {CHROMIUM} (install it with `apt-get install chromium`); the browser test will skip")
        return
    say("installing Chromium for the browser test (apt-get install chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    try:
        if subprocess.run(install, env=env, capture_output=True, timeout=900).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=900)  # no lists yet
            subprocess.run(install, env=env, capture_output=True, timeout=900)
    except (OSError, subprocess.SubprocessError) as e:
        say(f"could not install Chromium ({e}); the browser test will skip")
        return
    if not CHROMIUM.is_file():
        say("`apt-get install chromium` did not give /usr/bin/chromium; the browser test will skip")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"lab", "test", "setup", "lock"}:
        print(__doc__)
        return 2
    action, rest = argv[0], argv[1:]
    versions = "locked"
    if action == "test" and rest and rest[0].startswith("--versions"):
        versions = rest.pop(0).partition("=")[2] or (rest.pop(0) if rest else "")
        if versions not in {"locked", "newest", "oldest"}:
            print(f"[course] --versions: expected locked, newest or oldest, got {versions!r}", file=sys.stderr)
            return 2
    if action == "lock":
        return lock(ensure_env())
    if action == "test" and versions == "newest":
        py = ensure_env(ROOT / ".venv-newest", None, upgrade=True)
    elif action == "test" and versions == "oldest":
        py = ensure_env(ROOT / ".venv-oldest", OLDEST)
    else:
        py = ensure_env(VENV, LOCK if action == "test" and LOCK.exists() else None)
    if action == "setup":
        say(f"ready: {py}")
        return 0
    if action == "test":
        if versions != "locked":
            listing = subprocess.run([str(py), "-m", "pip", "list", "--disable-pip-version-check"],
                                     capture_output=True, text=True, cwd=ROOT).stdout
            (ROOT / f".venv-{versions}" / "versions.txt").write_text(listing, encoding="utf-8")
            say(f"testing with the {versions} versions (listed in .venv-{versions}/versions.txt)")
        ensure_browser()
        return subprocess.call([str(py), "-m", "pytest", *rest], cwd=ROOT)
    quiet_lab(py)
    rest = [*LAB_OPTIONS, *kernel_options(py), f"--LabApp.default_url=/lab/tree/{FIRST_NOTEBOOK}", *rest]
    say(f"starting JupyterLab on notebooks/, opening {FIRST_NOTEBOOK} (Ctrl-C to stop)")
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in rest:
        rest.append("--allow-root")  # containers and cloud machines often run as root
    cmd = [str(py), "-m", "jupyter", "lab", "--notebook-dir", str(ROOT / "notebooks"), *rest]
    return subprocess.call(cmd, cwd=ROOT)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
