"""Every command ends on any input file (issue 14, point 5).

Generated input files (empty, blank lines only, one word, two short lines, duplicates,
lines with no variation, CRLF, Latin-1 and other invalid UTF-8, binary, emoji, 1 MB on
one line) are fed to `course expand`, `course train-tokenizer`, `course train` (tiny
settings) and `course generate`. Each run must either exit 0 with a correct result,
checked against the input, or exit 2 with exactly one line on stderr that names the
file or flag; never a traceback, never a hang. Most runs are in-process through
`course_lib.cli.main`; a few are real subprocesses to prove the exit code and the shape
of stderr. Every output goes to a fresh temporary folder.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from course_lib.cli import main
from course_lib.model import GPT
from course_lib.tokenizer import load_tokenizer

ROOT = Path(__file__).resolve().parent.parent
TRAIN_TXT = ROOT / "data" / "train.txt"
BOUND_S = 60.0  # any one command on any of these inputs, on a slow shared CPU

# --------------------------------------------------------------------------- inputs

_WORDS = "the cat sat on a mat, and dog ran home old little quietly bread or cheese".split()
_EMOJI = ["\U0001F642", "\U0001F389", "\U0001F468\u200d\U0001F469\u200d\U0001F467", "\u2764\ufe0f",
          "\U0001F1EB\U0001F1F7"]
_line = st.lists(st.sampled_from(_WORDS + _EMOJI), min_size=1, max_size=10).map(" ".join)
_blank = st.sampled_from(["", " ", "\t", "\u00a0", "\u3000", "  \t "])


def _join(lines: list[str], sep: str = "\n", end: bool = True) -> bytes:
    return (sep.join(lines) + (sep if end and lines else "")).encode("utf-8")


INPUTS = st.one_of(
    st.just(b""),
    st.lists(_blank, min_size=1, max_size=6).map(_join),  # blank lines only
    st.lists(_blank, max_size=3).map(lambda b: ("\ufeff" + "\n".join(b)).encode()),  # a BOM and nothing else
    st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True).map(str.encode),  # one word, no newline
    st.lists(_line, min_size=2, max_size=2).map(_join),  # two short lines
    st.tuples(_line, st.integers(2, 60)).map(lambda t: _join([t[0]] * t[1])),  # duplicates
    st.tuples(st.sampled_from("a.\u00e9 "), st.integers(1, 400)).map(lambda t: (t[0] * t[1]).encode()),  # no variation
    st.lists(_line, min_size=1, max_size=30).map(lambda ls: _join(ls, "\r\n")),  # CRLF
    st.lists(_line, min_size=1, max_size=8).map(lambda ls: _join(ls, "\r")),  # old Mac CR
    st.lists(st.sampled_from(["caf\u00e9 au lait", "na\u00efve", "\u00fcber alles", "plain"]), min_size=1,
             max_size=5).map(lambda ls: "\n".join(ls).encode("latin-1")),  # Latin-1: invalid UTF-8
    st.binary(min_size=1, max_size=3000),  # binary, usually invalid UTF-8
    st.binary(min_size=1, max_size=300).map(lambda b: bytes(x & 0x7F for x in b)),  # control bytes, valid UTF-8
    st.lists(st.lists(st.sampled_from(_EMOJI + ["a", " "]), min_size=1, max_size=20).map("".join),
             min_size=1, max_size=20).map(_join),  # emoji
    st.lists(st.text(min_size=0, max_size=40), max_size=12).map(_join),  # any Unicode at all
    st.lists(_line, min_size=10, max_size=200).map(_join),  # ordinary text
)

ONE_MB = {  # a 1 MB single line, three ways
    "one_word": b"a" * 1_000_000,
    "words": (b"the old cat sat on the mat, and the dog ran home " * 20_000)[:1_000_000],
    "emoji": ("\U0001F642" * 250_000).encode(),
}


def _decoded(data: bytes) -> str | None:
    """What a valid input reads as (read_text's rules), or None when it must be refused."""
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None
    return text if text.strip() else None


def _kept_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


# --------------------------------------------------------------------------- running

def run_cli(argv: list[str]) -> tuple[int, str, str, float]:
    """`course ...` in-process: (exit status, stdout, stderr, seconds). An exception fails the test."""
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue(), time.perf_counter() - start


def _event(what: str) -> None:
    """Count outcomes in --hypothesis-show-statistics (a no-op outside a Hypothesis test)."""
    with contextlib.suppress(InvalidArgument):
        event(what)


def assert_one_clear_line(command: str, err: str, names: tuple[str, ...]) -> str:
    """stderr is exactly one line, "course CMD: error: ...", naming one of `names`."""
    assert "Traceback" not in err, err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith(f"course {command}: error: "), err
    assert any(n in lines[0] for n in names), (names, err)
    return lines[0]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("any_input")


def _fresh(root: Path, prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                       HealthCheck.function_scoped_fixture])

# --------------------------------------------------------------------------- expand


def check_expand(data: bytes, extra: int, seed: int, work: Path) -> None:
    src, out = work / "in.txt", work / "out.txt"
    src.write_bytes(data)
    text = _decoded(data)
    kept = _kept_lines(text) if text is not None else []
    target = len(kept) + extra if kept else 1 + extra
    rc, printed, err, seconds = run_cli(["expand", "--in_txt", str(src), "--out_txt", str(out),
                                         "--target", str(target), "--seed", str(seed)])
    assert seconds < BOUND_S
    _event(f"exit {rc}")
    if not kept:
        assert rc == 2
        line = assert_one_clear_line("expand", err, (str(src),))
        assert "--in_txt" in line and ("empty" in line or "UTF-8" in line or "no non-blank" in line)
        assert not out.exists()
        return
    assert rc == 0 and not err, err
    raw = out.read_bytes().decode("utf-8")
    assert raw.endswith("\n")
    lines = raw[:-1].split("\n")
    assert len(lines) == target  # exactly --target lines
    assert not Counter(kept) - Counter(lines)  # every input line, as often as in the input
    m = re.search(r"([\d,]+) lines = ([\d,]+) originals \+ ([\d,]+) new \+ ([\d,]+) exact repeats", printed)
    assert m, printed
    total, orig, made, repeats = (int(g.replace(",", "")) for g in m.groups())
    assert (total, orig) == (target, len(kept)) and orig + made + repeats == target
    assert made == len(set(lines) - set(kept))  # the report's "new" are the lines not in the input
    if "no operation could make a new line" in printed:
        assert made < extra


@settings(max_examples=100, **_SETTINGS)
@given(data=INPUTS, extra=st.integers(0, 120), seed=st.integers(0, 2**31))
@pytest.mark.timeout(300)
def test_expand_any_input(scratch: Path, data: bytes, extra: int, seed: int) -> None:
    check_expand(data, extra, seed, _fresh(scratch, "expand"))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", sorted(ONE_MB))
def test_expand_a_1mb_single_line(scratch: Path, kind: str) -> None:
    check_expand(ONE_MB[kind], 5, 7, _fresh(scratch, "expand1mb"))


# --------------------------------------------------------------------------- train-tokenizer


def check_train_tokenizer(data: bytes, impl: str, work: Path, vocab_size: int = 300) -> None:
    src, out = work / "text.txt", work / "tok"
    src.write_bytes(data)
    text = _decoded(data)
    rc, printed, err, seconds = run_cli(["train-tokenizer", "--text", str(src), "--vocab_size", str(vocab_size),
                                         "--out", str(out), "--impl", impl])
    assert seconds < BOUND_S
    _event(f"exit {rc}")
    if text is None:
        assert rc == 2
        line = assert_one_clear_line("train-tokenizer", err, (str(src),))
        assert "--text" in line and ("empty" in line or "not valid UTF-8" in line)
        assert not out.exists()
        return
    assert rc == 0, err
    assert "Traceback" not in err
    tok = load_tokenizer(out)
    assert 257 <= len(tok) <= vocab_size
    ids = tok.encode_ordinary(text)
    assert tok.decode(ids) == text  # the tokenizer round-trips the text it was trained on
    assert f"({len(ids):,} tokens)" in printed


@settings(max_examples=40, **_SETTINGS)
@given(data=INPUTS, impl=st.sampled_from(["hf", "course"]))
@pytest.mark.timeout(300)
def test_train_tokenizer_any_input(scratch: Path, data: bytes, impl: str) -> None:
    check_train_tokenizer(data, impl, _fresh(scratch, "tok"))


@pytest.mark.timeout(200)
@pytest.mark.parametrize("kind", sorted(ONE_MB))
@pytest.mark.parametrize("impl", ["hf", "course"])
def test_train_tokenizer_a_1mb_single_line(scratch: Path, kind: str, impl: str) -> None:
    check_train_tokenizer(ONE_MB[kind], impl, _fresh(scratch, "tok1mb"))


# --------------------------------------------------------------------------- train

SEQ_LEN, BATCH = 4, 2
TINY = ["--seq_len", str(SEQ_LEN), "--batch_size", str(BATCH), "--n_layer", "1", "--n_head", "1",
        "--n_embd", "8", "--max_steps", "1", "--eval_batches", "1", "--eval_interval", "1",
        "--sample_prompt", "", "--no_progress", "--device", "cpu", "--seed", "0"]


@pytest.fixture(scope="module")
def tokenizer_dir(scratch: Path) -> Path:
    out = scratch / "tokenizer_300"
    rc, _, err, _ = run_cli(["train-tokenizer", "--text", str(TRAIN_TXT), "--vocab_size", "300", "--out", str(out)])
    assert rc == 0, err
    return out


def check_train(data: bytes, tokenizer_dir: Path, work: Path) -> None:
    src, out = work / "train.txt", work / "model"
    src.write_bytes(data)
    text = _decoded(data)
    rc, printed, err, seconds = run_cli(["train", "--train_txt", str(src), "--tokenizer_dir", str(tokenizer_dir),
                                         "--out", str(out), *TINY])
    assert seconds < BOUND_S
    _event(f"exit {rc}")
    if text is None:
        assert rc == 2
        line = assert_one_clear_line("train", err, (str(src),))
        assert "--train_txt" in line
        assert not out.exists()
        return
    n = len(load_tokenizer(tokenizer_dir).encode_ordinary(text))
    n_val = max(1, int(n * 0.1))
    if n - n_val < SEQ_LEN * BATCH + 1 or n_val < SEQ_LEN + 1:  # too little text for one batch
        assert rc == 2
        line = assert_one_clear_line("train", err, ("--train_txt", "--seq_len", "--val_fraction"))
        assert "tokens" in line
        assert not out.exists()
        return
    assert rc == 0, err
    assert "done at step 1/1" in printed
    model = GPT.from_pretrained(out)  # the folder it wrote loads
    assert model.config.vocab_size == len(load_tokenizer(tokenizer_dir))


@settings(max_examples=15, **_SETTINGS)
@given(data=INPUTS)
@example(data="\r\n".join(["The old cat sat on the mat, and the dog ran home."] * 40).encode())  # CRLF
@example(data=" ".join(_EMOJI * 30).encode())  # emoji
@pytest.mark.timeout(300)
def test_train_any_input(scratch: Path, tokenizer_dir: Path, data: bytes) -> None:
    check_train(data, tokenizer_dir, _fresh(scratch, "train"))


@pytest.mark.timeout(200)
def test_train_a_1mb_single_line(scratch: Path, tokenizer_dir: Path) -> None:
    check_train(ONE_MB["words"], tokenizer_dir, _fresh(scratch, "train1mb"))


# --------------------------------------------------------------------------- generate


@pytest.fixture(scope="module")
def model_dir(scratch: Path, tokenizer_dir: Path) -> Path:
    out = scratch / "tiny_model"
    rc, _, err, _ = run_cli(["train", "--train_txt", str(TRAIN_TXT), "--tokenizer_dir", str(tokenizer_dir),
                             "--out", str(out), *TINY])
    assert rc == 0, err
    return out


PROMPTS = st.one_of(
    st.text(min_size=0, max_size=60),
    st.sampled_from(["<|endoftext|>", "a<|endoftext|>b", "\r\n", " ", "\x00", "\U0001F468\u200d\U0001F469",
                     "caf\u00e9", "\ufeffThe", "the cat " * 40]),
)


@settings(max_examples=30, **_SETTINGS)
@given(prompt=PROMPTS, strategy=st.sampled_from(["greedy", "top_p", "beam", "contrastive"]),
       new=st.integers(0, 12))
@pytest.mark.timeout(300)
def test_generate_any_prompt(model_dir: Path, prompt: str, strategy: str, new: int) -> None:
    # --prompt=TEXT, as a shell user passes text that may start with "-" (argparse reads "--prompt -x"
    # as two options, see test_a_prompt_that_looks_like_a_flag_gets_one_clear_line)
    rc, printed, err, seconds = run_cli(["generate", "--model_dir", str(model_dir), f"--prompt={prompt}",
                                         "--strategy", strategy, "--max_new_tokens", str(new),
                                         "--seed", "1", "--device", "cpu"])
    assert seconds < BOUND_S
    _event(f"exit {rc}")
    if not prompt:
        assert rc == 2
        assert_one_clear_line("generate", err, ("--prompt",))
        return
    assert rc == 0, err
    assert printed.startswith(prompt)  # the prompt comes back unchanged, then the continuation
    assert "Traceback" not in err
    for line in err.splitlines():  # only one-line notes: a prompt longer than the context, a barely trained model
        assert line.startswith(("course generate: warning: ", "course generate: note: ")), err


def _damage(kind: str, model_dir: Path, root: Path) -> Path:
    d = root / kind
    if kind == "missing":
        return d
    if kind == "a_file":
        d.write_text("not a folder\n", encoding="utf-8")
        return d
    if kind == "empty":
        d.mkdir()
        return d
    shutil.copytree(model_dir, d)
    if kind == "tokenizer_only":
        (d / "config.json").unlink()
        (d / "model.safetensors").unlink()
    elif kind == "config_not_json":
        (d / "config.json").write_bytes(b"{not json\xff")
    elif kind == "config_wrong_shape":
        cfg = json.loads((d / "config.json").read_text(encoding="utf-8"))
        cfg["n_embd"] = 16
        (d / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    elif kind == "weights_garbage":
        (d / "model.safetensors").write_bytes(os.urandom(64))
    elif kind == "no_weights":
        (d / "model.safetensors").unlink()
    elif kind == "no_tokenizer":
        for name in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                     "special_tokens_map.json"):
            (d / name).unlink(missing_ok=True)
    elif kind == "merges_garbage":
        (d / "merges.txt").write_bytes(b"#version: 0.2\n\xff\xfe nonsense here\n")
    elif kind == "vocab_not_an_object":
        (d / "vocab.json").write_text("[1, 2, 3]", encoding="utf-8")
    elif kind == "tokenizer_config_garbage":
        (d / "tokenizer_config.json").write_text("[{", encoding="utf-8")
    return d


BAD_MODEL_DIRS = ["missing", "a_file", "empty", "tokenizer_only", "config_not_json", "config_wrong_shape",
                  "weights_garbage", "no_weights", "no_tokenizer", "merges_garbage", "vocab_not_an_object",
                  "tokenizer_config_garbage"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", BAD_MODEL_DIRS)
def test_generate_bad_model_dir_is_one_clear_line(model_dir: Path, scratch: Path, kind: str) -> None:
    d = _damage(kind, model_dir, _fresh(scratch, "badmodel"))
    rc, printed, err, seconds = run_cli(["generate", "--model_dir", str(d), "--prompt", "The",
                                         "--max_new_tokens", "3", "--device", "cpu"])
    assert seconds < BOUND_S
    assert rc == 2 and not printed
    line = assert_one_clear_line("generate", err, (str(d),))
    assert "--model_dir" in line or "--tokenizer_dir" in line


# --------------------------------------------------------------------------- real subprocesses


def _course(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "course_lib", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)


@pytest.mark.timeout(150)
def test_subprocess_expand_of_two_short_lines_ends_with_repeats(tmp_path: Path) -> None:
    src, out = tmp_path / "t.txt", tmp_path / "o.txt"
    src.write_text("hello world\nfoo bar\n", encoding="utf-8")
    r = _course("expand", "--in_txt", str(src), "--out_txt", str(out), "--target", "100", "--seed", "7")
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and "no operation could make a new line after" in r.stdout
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 100 and set(lines) == {"hello world", "foo bar"}


@pytest.mark.timeout(150)
def test_subprocess_train_tokenizer_on_binary_is_one_line_exit_2(tmp_path: Path) -> None:
    src = tmp_path / "blob.bin"
    src.write_bytes(bytes(range(256)) * 4)
    r = _course("train-tokenizer", "--text", str(src), "--vocab_size", "300", "--out", str(tmp_path / "tok"))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("course train-tokenizer: error: --text:") and str(src) in r.stderr
    assert "not valid UTF-8 (first bad byte at offset 128" in r.stderr
    assert not (tmp_path / "tok").exists()


@pytest.mark.timeout(150)
def test_subprocess_generate_with_a_damaged_model_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text("{not json", encoding="utf-8")
    r = _course("generate", "--model_dir", str(d), "--prompt", "The", "--device", "cpu")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"course generate: error: --model_dir: {d}")  # GPT.from_pretrained's own line:
    assert "config.json is not valid JSON" in r.stderr and "damaged" in r.stderr  # the file and what is wrong


def test_a_prompt_that_looks_like_a_flag_gets_one_clear_line(model_dir: Path) -> None:
    """`--prompt -x` is two options to argparse: exit 2, naming --prompt; `--prompt=-x` works."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as info:
        main(["generate", "--model_dir", str(model_dir), "--prompt", "-x", "--max_new_tokens", "2"])
    assert info.value.code == 2 and "Traceback" not in err.getvalue()
    (line,) = [ln for ln in err.getvalue().splitlines() if "error:" in ln]
    assert line.startswith("course generate: error: ") and "--prompt" in line
    rc, printed, _, _ = run_cli(["generate", "--model_dir", str(model_dir), "--prompt=-x", "--max_new_tokens", "2",
                                 "--device", "cpu"])
    assert rc == 0 and printed.startswith("-x")
