"""The notebook 01 checks: its three pieces (count_pairs, apply_merge, the tokenizer's encode) and its
exercises pass with the reference, fail with a wrong answer, fall back to the reference with a stub."""

from __future__ import annotations

import random

import pytest
import regex

from course_lib import checks, tokenizer
from course_lib.checks import nb01_tokenization as N
from course_lib.checks.nb01_tokenization import decode_stream, longest_match, split_in_threes


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


def wrong_decode_stream(ids, vocab):
    return [vocab[i].decode("utf-8", errors="replace") for i in ids]  # each token on its own


def wrong_split_in_threes(text):
    return regex.findall(r"\p{N}{1,3}|\S+|\s+", text)  # forgets GPT-2's other pieces


def wrong_longest_match(piece, vocab):
    token_id = {b: i for i, b in vocab.items()}
    return [token_id[bytes([b])] for b in piece]  # one byte at a time


class StubTokenizer(N.Tokenizer):
    def encode(self, text):
        raise NotImplementedError


class ReversedMergesTokenizer(N.Tokenizer):
    def encode(self, text):  # the latest merge first
        ids = [self.byte_id[b] for b in text.encode("utf-8")]
        for pair, new_id in reversed(list(self.merges.items())):
            ids = N.apply_merge(ids, pair, new_id)
        return ids


CASES = [
    (checks.check_count_pairs, N.count_pairs, wrong_count_pairs, stub),
    (checks.check_apply_merge, N.apply_merge, wrong_apply_merge, stub),
    (checks.check_tokenizer_encode, N.Tokenizer, ReversedMergesTokenizer, StubTokenizer),
    (checks.check_decode_stream, decode_stream, wrong_decode_stream, stub),
    (checks.check_split_in_threes, split_in_threes, wrong_split_in_threes, stub),
    (checks.check_longest_match, longest_match, wrong_longest_match, stub),
]


@pytest.mark.parametrize(("check", "reference", "wrong", "unfinished"), CASES, ids=[c[0].__name__ for c in CASES])
def test_check_passes_fails_and_falls_back(check, reference, wrong, unfinished, capsys) -> None:
    ok = check(reference)
    assert ok.status == "pass" and ok.fn is reference
    assert "✓" in capsys.readouterr().out

    bad = check(wrong)
    assert bad.status == "fail" and bad.fn is reference
    out = capsys.readouterr().out
    assert "✗" in out and "Hint" in out

    todo = check(unfinished)
    assert todo.status == "todo" and todo.fn is reference
    assert "not done yet" in capsys.readouterr().out


def test_checks_are_exported() -> None:
    assert set(N.__all__) == {"check_count_pairs", "check_apply_merge", "check_tokenizer_encode",
                              "check_decode_stream", "check_split_in_threes", "check_longest_match"}
    for name in N.__all__:
        assert getattr(checks, name) is getattr(N, name)


def test_a_crashing_answer_is_reported_not_raised(capsys) -> None:
    result = checks.check_count_pairs(lambda ids: {(ids[0], ids[-1]): 1 / 0})
    assert result.status == "fail"
    assert "raised" in capsys.readouterr().out


def test_the_references_are_the_course_librarys() -> None:
    """The notebook's pieces, as the reference cells show them, give what course_lib's tokenizer gives."""
    rng = random.Random(0)
    for _ in range(200):
        ids = [rng.randrange(4) for _ in range(rng.randint(0, 12))]
        assert N.count_pairs(ids) == tokenizer.count_pairs(ids)
        pair = (rng.randrange(4), rng.randrange(4))
        assert N.apply_merge(ids, pair, 300) == tokenizer.apply_merge(ids, pair, 300)
    text = tokenizer.teaching.__doc__ * 3 + " It's 2024: naïve café, 日本語 😀\n\n  end"
    mine = N.Tokenizer.train(text, 256 + 60)
    lib = tokenizer.BPETokenizer.train(text, 256 + 60, special_tokens=())
    assert list(mine.merges) == lib.merges and mine.vocab == lib.vocab
    assert mine.encode(text) == lib.encode_ordinary(text)
    assert mine.decode(mine.encode(text)) == text


def test_the_encode_cases_separate_rank_order_from_the_classic_mistakes() -> None:
    """Each fixed case of the tokenizer's encode is one where some known mistake gives another answer."""
    run = N._EncodeRunner
    for case in N.TOKENIZER_ENCODE.cases[:6]:
        table, text = case.make()
        expected = run(N.Tokenizer)(table, text)
        assert any(run(m.variant)(table, text) != expected for m in N.TOKENIZER_ENCODE.mistakes), case.about
    table, text = N.TOKENIZER_ENCODE.cases[0].make()
    vocab, _ = table.build()
    assert [vocab[i] for i in run(N.Tokenizer)(table, text)] == [b"abc", b"bc"]
    assert [vocab[i] for i in run(N._LeftmostFirst)(table, text)] == [b"ab", b"c", b"bc"]


def test_the_encode_message_spells_the_tokens(capsys) -> None:
    result = checks.check_tokenizer_encode(N._LeftmostFirst)
    out = capsys.readouterr().out
    assert result.status == "fail" and "fixed case 1 of 8" in out
    assert "that is [b'ab', b'c', b'bc']" in out and "that is [b'abc', b'bc']" in out
    assert "Recognised mistake: merging the leftmost pair that has a merge" in out
    assert "merges in this order: b'b' with b'c', b'a' with b'bc', b'a' with b'b'" in out


def test_longest_match_differs_from_bpe_where_the_rank_order_matters() -> None:
    vocab = N._byte_vocab("ab", "bcd")
    token = {b: i for i, b in vocab.items()}
    assert longest_match(b"abcd", vocab) == [token[b"ab"], token[b"c"], token[b"d"]]
    assert longest_match(b"", vocab) == []


def test_decode_stream_equals_pythons_incremental_decoder() -> None:
    import codecs

    rng = random.Random(3)
    for _ in range(500):
        ids, vocab = N._stream_inputs(rng)
        decoder = codecs.getincrementaldecoder("utf-8")()
        assert decode_stream(ids, vocab) == [decoder.decode(vocab[i]) for i in ids]
        assert "".join(decode_stream(ids, vocab)) == b"".join(vocab[i] for i in ids).decode("utf-8")


def test_split_in_threes_only_changes_numbers() -> None:
    text = "It's 2024: naïve café, x² and ½ cup!\n\n  12345 ok"
    ours, gpt2 = split_in_threes(text), regex.findall(tokenizer.GPT2_SPLIT_PATTERN, text)
    assert "".join(ours) == text
    assert [p for p in ours if not p.strip().isnumeric()] == [p for p in gpt2 if not p.strip().isnumeric()]
    assert " 123" in ours and "45" in ours and " 12345" in gpt2
