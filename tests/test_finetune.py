"""course_lib.finetune: the instruction set, prompt masking, padding, answering, memory counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from course_lib import finetune
from course_lib.errors import CourseInputError
from course_lib.model import GPT, GPTConfig
from course_lib.tokenizer import BPETokenizer, gpt2_tokenizer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / finetune.INSTRUCTIONS_FILE


def test_the_committed_file_is_what_the_generator_makes() -> None:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    assert rows == finetune.make_instructions()
    assert DATA.stat().st_size < 100_000


def test_the_set_has_every_task_in_both_splits_and_no_leak() -> None:
    rows = finetune.make_instructions()
    assert 150 <= len(rows) <= 300
    for task in finetune.TASKS:
        splits = [r["split"] for r in rows if r["task"] == task]
        assert "train" in splits and "test" in splits, task
    train = {r["instruction"] for r in rows if r["split"] == "train"}
    test = {r["instruction"] for r in rows if r["split"] == "test"}
    assert not train & test and len(train) + len(test) == len(rows)  # no instruction twice
    assert finetune.make_instructions() == rows  # seeded


def test_answers_are_right() -> None:
    by = {r["instruction"]: r["response"] for r in finetune.make_instructions()}
    assert by["Give the opposite of: hot"] == "cold"
    assert by["Write the plural of: mouse"] == "mice"
    assert by["Write in capital letters: good morning"] == "GOOD MORNING"
    assert by["Which number comes after nineteen?"] == "twenty"
    for ins, res in by.items():
        if ins.startswith("What is "):
            a, b = ins[len("What is "):-1].split(" plus ")
            assert finetune.NUMBER_WORDS.index(a) + finetune.NUMBER_WORDS.index(b) == finetune.NUMBER_WORDS.index(res)
        if ins.startswith("Reverse"):
            assert res.split() == ins.split(": ")[1].split()[::-1]


def test_load_instructions_reads_the_file_and_splits(tmp_path: Path, monkeypatch) -> None:
    assert finetune.load_instructions() == finetune.make_instructions()
    test = finetune.load_instructions(split="test")
    assert test and all(r["split"] == "test" for r in test)
    monkeypatch.setattr(finetune, "instructions_path", lambda: None)  # installed without data/
    assert finetune.load_instructions() == finetune.make_instructions()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "response": "b"}\n{"instruction": 1}\n', encoding="utf-8")
    with pytest.raises(CourseInputError, match="line 2"):
        finetune.load_instructions(bad)
    bad.write_text("not json\n", encoding="utf-8")
    with pytest.raises(CourseInputError, match="line 1: not a JSON object"):
        finetune.load_instructions(bad)
    with pytest.raises(CourseInputError, match="split"):
        finetune.load_instructions(split="val")


def test_the_modern_english_set_is_the_generators_and_right(monkeypatch) -> None:
    """data/modern_english.jsonl (the course model's task): made from Tiny Shakespeare by the rule, every
    span needs a change, a fifth held out, no span twice; without a checkout the same rows in memory."""
    path = ROOT / "data" / finetune.MODERN_FILE
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert rows == finetune.make_modern_english() == finetune.load_modern_english()
    assert len(rows) == 800 and sum(r["split"] == "test" for r in rows) == 160
    assert len({r["instruction"] for r in rows}) == len(rows)
    text = (ROOT / "data" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    prefix = finetune.MODERN_TASK.format("")
    for r in rows:
        span = r["instruction"][len(prefix):]
        assert r["instruction"].startswith(prefix) and span in text, span  # cut from the plays
        assert r["response"] == finetune.modernize(span.split()) != span  # copying unchanged is never right
        assert not {w.lower() for w in r["response"].split()} & set(finetune.MODERN_ENGLISH), r
    monkeypatch.setattr(finetune, "modern_english_path", lambda: None)  # installed without data/
    assert finetune.load_modern_english(split="test") == [r for r in rows if r["split"] == "test"]


@pytest.mark.parametrize("span, modern", [
    ("Hath Romeo slain himself", "Has Romeo slain himself"),
    ("thou art my friend", "you are my friend"),
    ("'Tis more than you deserve", "It is more than you deserve"),
    ("I pray thee", "I pray you"),
    ("the art of war", None),           # "art" not after "thou" may be the noun
    ("thou speakest well", None),       # an -est verb the table does not hold
    ("the best of thy kin", "the best of your kin"),
])
def test_modernize(span: str, modern: str | None) -> None:
    assert finetune.modernize(span.split()) == modern


def test_encode_example_masks_the_prompt_with_gpt2_tokens() -> None:
    tok = gpt2_tokenizer()
    ids, labels = finetune.encode_example(tok, "Give the opposite of: hot", "cold")
    prompt = tok.encode("Instruction: Give the opposite of: hot\nAnswer:")
    assert ids == tok.encode("Instruction: Give the opposite of: hot\nAnswer: cold\n")  # same as one text
    assert labels[: len(prompt)] == [-100] * len(prompt)
    assert labels[len(prompt):] == ids[len(prompt):] == tok.encode(" cold\n")
    with pytest.raises(CourseInputError, match="longer than the model's context of 5"):
        finetune.encode_example(tok, "Give the opposite of: hot", "cold", max_len=5)


def test_collate_pads_right_and_ignores_the_padding() -> None:
    x, y = finetune.collate([([1, 2, 3], [-100, 2, 3]), ([4], [4])], pad_id=9)
    assert x.tolist() == [[1, 2, 3], [4, 9, 9]]
    assert y.tolist() == [[-100, 2, 3], [4, -100, -100]]
    with pytest.raises(CourseInputError):
        finetune.collate([])
    with pytest.raises(CourseInputError, match="2 ids but 1 labels"):
        finetune.collate([([1, 2], [1])])


def test_right_padding_changes_no_loss_and_prompt_tokens_carry_none() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50257, n_positions=64, n_embd=16, n_layer=1, n_head=2)).eval()
    tok = gpt2_tokenizer()
    short = finetune.encode_example(tok, "Write the plural of: cat", "cats")
    long = finetune.encode_example(tok, "Reverse the order of the words: red cat moon", "moon cat red")
    x1, y1 = finetune.collate([short])
    x2, y2 = finetune.collate([short, long], pad_id=50256)
    with torch.no_grad():
        logits_alone = model(x1).logits[0]
        logits_padded = model(x2).logits[0, : x1.shape[1]]
        torch.testing.assert_close(logits_alone, logits_padded)
        # the loss counts only the answer tokens: changing a prompt label's target does nothing
        ids, labels = short
        n = labels.count(-100)
        full_loss = model(x1, labels=torch.tensor([ids])).loss
        answer_loss = model(x1, labels=y1).loss
        logp = torch.log_softmax(model(x1).logits[0, n - 1:-1], -1)
        want = -logp[torch.arange(len(ids) - n), torch.tensor(ids[n:])].mean()
    torch.testing.assert_close(answer_loss, want)
    assert not torch.isclose(full_loss, answer_loss)


def test_answer_stops_at_the_newline_and_exact_match_counts() -> None:
    assert {198, 628} <= set(finetune.newline_ids(gpt2_tokenizer()))  # "\n" and "\n\n"
    tok = BPETokenizer({i: bytes([i]) for i in range(256)}, [])  # bytes: a small, quick stand-in
    assert finetune.newline_ids(tok) == [10]
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=256, n_positions=64, n_embd=32, n_layer=1, n_head=2))
    row = {"instruction": "Give the opposite of: hot", "response": "cold"}
    x, y = finetune.collate([finetune.encode_example(tok, row["instruction"], row["response"], 64)])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-2)
    model.train()
    for _ in range(60):  # memorise the one answer
        loss = model(x, labels=y).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert finetune.answer(model, tok, row["instruction"]) == "cold"
    assert model.training  # answer() restores the mode
    score, got = finetune.exact_match(model, tok, [row, {"instruction": row["instruction"], "response": "warm"}])
    assert got == ["cold", "cold"] and score == 0.5


# --------------------------------------------------------------------------- the larger online set (no network here)

ALPACA_LIKE = [
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "Eat well, sleep, move."},
    {"instruction": "Translate to French.", "input": "good morning", "output": "bonjour"},
    {"instruction": "Write a poem.", "input": "", "output": "Line one\nLine two"},  # two lines: left out
    {"instruction": "Say nothing.", "output": ""},                                   # no answer: left out
]


def test_alpaca_records_become_course_rows_with_and_without_input() -> None:
    rows = finetune.alpaca_to_rows(ALPACA_LIKE)
    assert rows == [
        {"task": "alpaca", "instruction": "Give three tips for staying healthy.",
         "response": "Eat well, sleep, move.", "split": "train"},
        {"task": "alpaca", "instruction": "Translate to French.\ngood morning", "response": "bonjour",
         "split": "train"},
    ]
    tok = gpt2_tokenizer()
    ids, labels = finetune.encode_example(tok, rows[1]["instruction"], rows[1]["response"])
    assert tok.decode(ids) == "Instruction: Translate to French.\ngood morning\nAnswer: bonjour\n"
    assert tok.decode([t for t, lab in zip(ids, labels) if lab != -100]) == " bonjour\n"
    for bad in ({"rows": []}, [{"instruction": "a"}], [{"instruction": "a", "input": 3, "output": "b"}]):
        with pytest.raises(CourseInputError, match="instruction"):
            finetune.alpaca_to_rows(bad)


def _serve(monkeypatch, data: bytes, blob: str | None = None) -> list[str]:
    """Go online with a fake download of `data` (taken as the real file unless `blob` says otherwise)."""
    calls: list[str] = []

    def fake(url: str, timeout: float) -> bytes:
        calls.append(url)
        return data

    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(finetune, "_download", fake)
    monkeypatch.setattr(finetune, "ALPACA_GIT_BLOB", blob or finetune.git_blob_id(data))
    return calls


def test_alpaca_is_downloaded_once_then_read_from_the_cache(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    calls = _serve(monkeypatch, json.dumps(ALPACA_LIKE).encode())
    shipped = finetune.load_instructions()
    rows = finetune.load_alpaca()
    assert len(calls) == 1 and (tmp_path / finetune.ALPACA_FILE).is_file()
    assert rows[: len(shipped)] == shipped and rows[len(shipped):] == finetune.alpaca_to_rows(ALPACA_LIKE)
    assert "downloaded from" in capsys.readouterr().out
    again = finetune.load_alpaca()
    assert again == rows and len(calls) == 1  # no second download
    out = capsys.readouterr().out
    assert "cached at" in out and "CC BY-NC 4.0" in out
    assert len(finetune.load_alpaca(max_rows=1)) == len(shipped) + 1
    assert len(finetune.load_alpaca(max_chars=45)) == len(shipped) + 1  # only "Translate to French..." fits


def test_offline_gives_the_shipped_set_with_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_OFFLINE", "1")

    def no_network(url: str, timeout: float) -> bytes:
        raise AssertionError("the network was touched offline")

    monkeypatch.setattr(finetune, "_download", no_network)
    assert finetune.load_alpaca() == finetune.load_instructions()
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "shipped set" in out and "offline mode" in out
    with pytest.raises(CourseInputError, match="offline mode"):
        finetune.load_alpaca(fallback=False)


def test_a_failed_html_or_corrupt_download_falls_back_or_says_why(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    page = b"<!DOCTYPE html><html><body>Rate limited</body></html>"
    _serve(monkeypatch, page, blob="0" * 40)  # the real file's id is not what came back
    assert finetune.load_alpaca() == finetune.load_instructions()
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "not the expected file (an HTML page" in out
    assert not (tmp_path / finetune.ALPACA_FILE).exists()  # nothing unverified is cached
    with pytest.raises(CourseInputError, match="not the expected file"):
        finetune.load_alpaca(fallback=False)

    _serve(monkeypatch, b'{"not": "a list"}')  # passes the checksum but has the wrong shape
    with pytest.raises(CourseInputError, match="expected a JSON list"):
        finetune.load_alpaca(fallback=False)
    (tmp_path / finetune.ALPACA_FILE).write_bytes(b"corrupt")  # a damaged cache is not used
    _serve(monkeypatch, b"[", blob="1" * 40)
    assert finetune.load_alpaca() == finetune.load_instructions()
    assert "the cached copy" in capsys.readouterr().out.splitlines()[-1]

    def timeout(url: str, timeout: float) -> bytes:
        raise TimeoutError("timed out")

    monkeypatch.setattr(finetune, "_download", timeout)
    finetune.load_alpaca()
    assert "download failed (TimeoutError: timed out)" in capsys.readouterr().out


def test_the_download_goes_through_urllib_with_a_file_url(tmp_path: Path, monkeypatch, capsys) -> None:
    src = tmp_path / "served" / "alpaca_data.json"
    src.parent.mkdir()
    src.write_text(json.dumps(ALPACA_LIKE), encoding="utf-8")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(finetune, "ALPACA_URL", src.as_uri())
    monkeypatch.setattr(finetune, "ALPACA_GIT_BLOB", finetune.git_blob_id(src.read_bytes()))
    rows = finetune.load_alpaca()
    assert [r for r in rows if r["task"] == "alpaca"] == finetune.alpaca_to_rows(ALPACA_LIKE)
    assert (tmp_path / "cache" / finetune.ALPACA_FILE).read_bytes() == src.read_bytes()


def test_git_blob_id_is_what_git_computes() -> None:
    assert finetune.git_blob_id(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # `git hash-object` of an empty file
    assert finetune.git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    assert finetune.ALPACA_URL.startswith("https://") and len(finetune.ALPACA_GIT_BLOB) == 40
