"""`course demo`: bad input is refused in one line; the page's notebook; a served page that answers.

The served-page test starts ``course demo attention --no-browser --port N`` (it needs Voilà,
the ``lab`` extra, and skips without it) and fetches the page. The browser test that renders
it with the network blocked is in tests/test_browser_classroom.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from course_lib.cli import demo, main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("argv", "said"), [
    (["demo", "atention"], "DEMO 'atention' is not one of attention, decoding, tokenizer"),
    (["demo", "attention", "--port", "0"], "--port 0 is not a port number"),
    (["demo", "decoding", "--model", "no-such-model"], "--model 'no-such-model' is not one of auto, course, gpt2"),
    (["demo", "tokenizer", "--model", "course"], "the tokenizer demo has no model"),
    (["demo", "decoding", "--zoom", "9"], "--zoom 9.0 is outside 0.5 .. 3"),
])
def test_bad_input_is_one_clear_line(argv: list[str], said: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err


def test_the_demo_notebook_is_one_cell_that_calls_show() -> None:
    nb = demo.demo_notebook("decoding", "course", "ROMEO:", 1.5)
    (cell,) = nb["cells"]
    assert cell["source"] == "from course_lib.cli import demo\ndemo.show('decoding', 'course', 'ROMEO:', 1.5)"
    assert (demo.TEMPLATE_ROOT / "voila" / "templates" / demo.TEMPLATE / "index.html.j2").is_file()
    assert "--template=course-demo" in demo.voila_command(Path("x.ipynb"), 8866)


def test_the_tokenizer_explorer_is_built_in_seconds() -> None:
    from course_lib.viz.tokens import TokenizerPlayground

    assert isinstance(demo.explorer("tokenizer", text="Hello"), TokenizerPlayground)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    """Whether something accepts connections on the port (a closed server's TIME_WAIT does not count)."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.mark.slow
def test_course_demo_attention_serves_a_page_that_answers(tmp_path: Path) -> None:
    pytest.importorskip("voila", reason="Voilà is not installed (the `lab` extra)")
    port = _free_port()
    log = (tmp_path / "demo.log").open("w")
    env = {**os.environ, "COURSE_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", "from course_lib.cli import main; raise SystemExit(main())",
                             "demo", "attention", "--no-browser", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        demo.wait_until_up(port, proc, timeout=120)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=300) as r:
            assert r.status == 200
            page = r.read().decode("utf-8")
        assert "<html" in page
        assert "cdn.jsdelivr.net" not in page and "fontawesome" not in page
        log.flush()
        assert "serving http://127.0.0.1:" in (tmp_path / "demo.log").read_text()
        proc.terminate()  # as a teacher's terminal closing would: Voilà must go with it
        assert proc.wait(timeout=30) == 0
        deadline = time.monotonic() + 15
        while _listening(port) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert not _listening(port), f"Voilà still serves port {port} after `course demo` was terminated"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        log.close()
