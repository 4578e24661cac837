"""The notebook 01 exercise checks: pass with the reference, fail with a wrong answer,
fall back to the reference with an unfinished stub."""

from __future__ import annotations

import pytest

from course_lib import checks
from course_lib.checks.nb01_tokenization import decode_stream, split_in_threes
from course_lib.tokenizer import apply_merge, count_pairs, encode_with_merges


def stub(*args, **kwargs):
    raise NotImplementedError


def wrong_count_pairs(ids):
    return {pair: 1 for pair in zip(ids, ids[1:])}  # forgets to count repeats


def wrong_apply_merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):  # overlapping occurrences handled wrongly: steps by one after a merge
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
        else:
            out.append(ids[i])
        i += 1
    return out


def wrong_encode_with_merges(ids, merges):
    ids = list(ids)
    for pair, new_id in reversed(list(merges.items())):  # applies merges in the wrong order
        ids = apply_merge(ids, pair, new_id)
    return ids


def wrong_decode_stream(ids, vocab):
    return [vocab[i].decode("utf-8", errors="replace") for i in ids]  # each token on its own


def wrong_split_in_threes(text):
    import regex

    return regex.findall(r"\p{N}{1,3}|\S+|\s+", text)  # forgets GPT-2's other pieces


CASES = [
    (checks.check_count_pairs, count_pairs, wrong_count_pairs),
    (checks.check_apply_merge, apply_merge, wrong_apply_merge),
    (checks.check_encode_with_merges, encode_with_merges, wrong_encode_with_merges),
    (checks.check_decode_stream, decode_stream, wrong_decode_stream),
    (checks.check_split_in_threes, split_in_threes, wrong_split_in_threes),
]


@pytest.mark.parametrize(("check", "reference", "wrong"), CASES, ids=[c[0].__name__ for c in CASES])
def test_check_passes_fails_and_falls_back(check, reference, wrong, capsys: pytest.CaptureFixture[str]) -> None:
    ok = check(reference)
    assert ok.status == "pass" and ok.fn is reference
    assert "✓" in capsys.readouterr().out

    bad = check(wrong)
    assert bad.status == "fail" and bad.fn is not wrong
    out = capsys.readouterr().out
    assert "✗" in out and "Hint" in out

    todo = check(stub)
    assert todo.status == "todo" and todo.fn is not stub
    assert "not done yet" in capsys.readouterr().out
    # the fallback behaves like the reference
    assert todo.fn.__name__ == reference.__name__


def test_checks_are_exported() -> None:
    from course_lib.checks import nb01_tokenization as tokenization

    assert set(tokenization.__all__) == {"check_count_pairs", "check_apply_merge", "check_encode_with_merges",
                                         "check_decode_stream", "check_split_in_threes"}
    for name in tokenization.__all__:
        assert getattr(checks, name) is getattr(tokenization, name)


def test_a_crashing_answer_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    result = checks.check_count_pairs(lambda ids: {(ids[0], ids[-1]): 1 / 0})
    assert result.status == "fail"
    assert "raised" in capsys.readouterr().out


def test_decode_stream_equals_pythons_incremental_decoder() -> None:
    import codecs
    import random

    from course_lib.checks.nb01_tokenization import _stream_inputs

    rng = random.Random(3)
    for _ in range(500):
        ids, vocab = _stream_inputs(rng)
        decoder = codecs.getincrementaldecoder("utf-8")()
        assert decode_stream(ids, vocab) == [decoder.decode(vocab[i]) for i in ids]
        assert "".join(decode_stream(ids, vocab)) == b"".join(vocab[i] for i in ids).decode("utf-8")


def test_split_in_threes_only_changes_numbers() -> None:
    import regex

    from course_lib.tokenizer import GPT2_SPLIT_PATTERN

    text = "It's 2024: naïve café, x² and ½ cup!\n\n  12345 ok"
    ours, gpt2 = split_in_threes(text), regex.findall(GPT2_SPLIT_PATTERN, text)
    assert "".join(ours) == text
    assert [p for p in ours if not p.strip().isnumeric()] == [p for p in gpt2 if not p.strip().isnumeric()]
    assert " 123" in ours and "45" in ours and " 12345" in gpt2
