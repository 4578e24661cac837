"""Batches of different-length prompts, logits_to_keep, streaming and stop strings, against transformers.

References: a left-padded batch with its `attention_mask` is decoded by `GPT2LMHeadModel.generate`
on the same weights (greedy, seeded sampling, beams; eos in some rows, num_return_sequences) and
must give exactly the same ids; every row must also equal that prompt decoded alone.
`GPT.forward(logits_to_keep=...)` equals transformers' forward; `transformers`' own
`TextStreamer`/`TextIteratorStreamer` run on the course `generate`; `stop_strings` end the same
rows at the same token as `transformers.generate(stop_strings=..., tokenizer=...)`.
"""

from __future__ import annotations

import inspect
import threading
import warnings

import pytest
import torch
import transformers
from tiny_models import CONFIGS, make_model, one_thread  # noqa: F401 - one_thread: an autouse fixture

from course_lib.errors import CourseInputError
from course_lib.generate import (
    StopStrings,
    TextStreamer,
    beam_search,
    contrastive_search,
    diverse_beam_search,
    generate,
    next_token_step,
)
from course_lib.model import LLAMA_SWITCHES

LENGTHS = (6, 2, 5, 1)  # the prompts of one ragged batch


def left_pad(prompts: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts of different lengths -> ids (B, T) left-padded with `pad`, and the mask (B, T)."""
    T = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (T - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (T - len(p)) + [1] * len(p) for p in prompts])
    return ids, mask


@pytest.fixture(scope="module", params=range(len(CONFIGS)), ids=[f"cfg{i}" for i in range(len(CONFIGS))])
def ragged(request):
    """(course GPT, transformers GPT2LMHeadModel with its weights, prompts, padded ids, mask)."""
    i = request.param
    vocab = CONFIGS[i][0]
    model = make_model(i, *CONFIGS[i])
    g = torch.Generator().manual_seed(10 + i)
    prompts = [torch.randint(1, vocab, (n,), generator=g).tolist() for n in LENGTHS]
    ids, mask = left_pad(prompts, pad=0)
    return model, model.to_hf().eval(), prompts, ids, mask


def hf_generate(hf, ids, mask, max_new_tokens, **kw):
    kw.setdefault("do_sample", False)
    if kw["do_sample"]:
        kw.setdefault("top_k", 0)  # transformers would otherwise add top_k=50
    eos = kw.get("eos_token_id")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hf.generate(ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                           pad_token_id=eos if eos is not None else 0, **kw)


def eos_in_some_rows(model, ids, mask) -> int:
    """A token that greedy decoding emits in some rows of the batch but not in all."""
    new = generate(model, ids, 12, attention_mask=mask)[:, ids.size(1):]
    for t in new[:, 2:].flatten().tolist():
        rows = (new == t).any(dim=1)
        if 0 < int(rows.sum()) < new.size(0):
            return t
    return int(new[0, 4])


# --------------------------------------------------------------------------------------
# the forward pass: padding mask, position ids, logits_to_keep
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("switches", [{}, LLAMA_SWITCHES], ids=["gpt2", "llama"])
def test_forward_with_padding_equals_transformers_and_each_row_alone(switches) -> None:
    model = make_model(0, 97, 2, 32, 4, **switches)
    hf = model.to_hf().eval()
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(1, 97, (n,), generator=g).tolist() for n in LENGTHS]
    ids, mask = left_pad(prompts, pad=0)
    pos = (mask.cumsum(-1) - 1).clamp_min(0)
    with torch.no_grad():
        ours = model(ids, attention_mask=mask, position_ids=pos).logits
        ref = hf(ids, attention_mask=mask, position_ids=pos).logits
        torch.testing.assert_close(ours[mask.bool()], ref[mask.bool()], rtol=1e-4, atol=1e-4)
        for b, p in enumerate(prompts):
            alone = model(torch.tensor([p])).logits[0]
            torch.testing.assert_close(ours[b, -len(p):], alone, rtol=1e-4, atol=1e-4)
        # the explicit path (attention weights) masks the same pads
        explicit = model(ids, attention_mask=mask, position_ids=pos, output_attentions=True)
        torch.testing.assert_close(explicit.logits[mask.bool()], ours[mask.bool()], rtol=1e-5, atol=1e-5)
        weights = explicit.attentions[0]  # (B, nh, T, T)
        for b in range(len(prompts)):  # text queries give pad keys zero weight
            text, pads = mask[b].bool(), ~mask[b].bool()
            assert float(weights[b][:, text][:, :, pads].abs().sum()) == 0.0, "a pad was attended"
        # the KV cache: the prompt, then two more tokens, with the mask of everything so far
        first = model(ids[:, :-2], attention_mask=mask[:, :-2], position_ids=pos[:, :-2], use_cache=True)
        rest = model(ids[:, -2:], past_key_values=first.past_key_values, attention_mask=mask,
                     position_ids=pos[:, -2:], use_cache=True)
        torch.testing.assert_close(rest.logits, ours[:, -2:], rtol=1e-4, atol=1e-4)


def test_logits_to_keep_equals_slicing_and_transformers() -> None:
    model = make_model(1, 61, 1, 16, 2)
    hf = model.to_hf().eval()
    ids = torch.randint(0, 61, (3, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(ids).logits
        assert torch.equal(model(ids, logits_to_keep=0).logits, full)
        for n in (1, 4, 9):
            kept = model(ids, logits_to_keep=n).logits
            assert kept.shape == (3, n, 61)
            torch.testing.assert_close(kept, full[:, -n:], rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(kept, hf(ids, logits_to_keep=n).logits, rtol=1e-4, atol=1e-4)
        where = torch.tensor([0, 5])
        torch.testing.assert_close(model(ids, logits_to_keep=where).logits, full[:, where], rtol=1e-6, atol=1e-6)
    with pytest.raises(CourseInputError, match="logits_to_keep"):
        model(ids, labels=ids, logits_to_keep=1)


def test_bad_masks_and_positions_are_one_clear_line() -> None:
    model = make_model(0, 50, 1, 16, 2)
    ids = torch.randint(0, 50, (2, 5))
    for bad in (torch.ones(2, 4), torch.ones(3, 5), torch.ones(5)):
        with pytest.raises(CourseInputError, match=r"attention_mask has shape") as e:
            model(ids, attention_mask=bad)
        assert "\n" not in str(e.value)
        with pytest.raises(CourseInputError, match=r"attention_mask has shape .* but the prompt has shape") as e:
            generate(model, ids, 3, attention_mask=bad)
        assert "\n" not in str(e.value)
    with pytest.raises(CourseInputError, match="position_ids"):
        model(ids, position_ids=torch.arange(4))
    with pytest.raises(CourseInputError, match="0 and 1"):
        generate(model, ids, 3, attention_mask=torch.full((2, 5), 2))
    with pytest.raises(CourseInputError, match="all 0"):
        generate(model, ids, 3, attention_mask=torch.tensor([[0] * 5, [1] * 5]))


# --------------------------------------------------------------------------------------
# ragged batches against transformers.generate: exact ids
# --------------------------------------------------------------------------------------
# Recent transformers (5.24 yes; 5.18 and 4.57 no) leave a prompt's left padding out of the repetition
# penalty, as the course does (pads are not text); older versions penalise the pad id too.
HF_PENALTY_SKIPS_PADS = "prompt_ignore_length" in inspect.getsource(
    transformers.generation.utils.GenerationMixin._get_logits_processor)


def test_greedy_ragged_batch_matches_transformers(ragged) -> None:
    model, hf, prompts, ids, mask = ragged
    eos = eos_in_some_rows(model, ids, mask)
    for kw in (dict(), dict(eos_token_id=eos), dict(eos_token_id=eos, repetition_penalty=1.4),
               dict(no_repeat_ngram_size=2)):
        ours = generate(model, ids, 12, attention_mask=mask, **kw)
        if "repetition_penalty" in kw:  # the pads are not text: each row is penalised as it would be alone
            for b, p in enumerate(prompts):
                alone = generate(model, p, 12, **kw)[0, len(p):]
                assert ours[b, ids.size(1):ids.size(1) + alone.numel()].tolist() == alone.tolist(), kw
        if "repetition_penalty" not in kw or HF_PENALTY_SKIPS_PADS:
            assert torch.equal(ours, hf_generate(hf, ids, mask, 12, **kw)), kw
        assert torch.equal(ours, generate(model, ids, 12, attention_mask=mask, use_cache=False, **kw)), kw
        assert torch.equal(ours, generate(hf, ids, 12, attention_mask=mask, **kw)), "transformers' model, course loop"
    ours = generate(model, ids, 12, attention_mask=mask, eos_token_id=eos)
    finished = (ours[:, ids.size(1):] == eos).any(dim=1)
    assert 0 < int(finished.sum()) < len(prompts), "eos should end some rows, not all"
    for b, p in enumerate(prompts):  # each row is what that prompt gives alone, then eos padding
        alone = generate(model, p, 12, eos_token_id=eos)[0, len(p):]
        assert ours[b, ids.size(1):ids.size(1) + alone.numel()].tolist() == alone.tolist()


@pytest.mark.parametrize("kw", [dict(), dict(temperature=0.7, top_p=0.9), dict(top_k=5, num_return_sequences=3)],
                         ids=["plain", "top_p", "top_k-n3"])
def test_seeded_sampling_ragged_batch_matches_transformers(ragged, kw) -> None:
    model, hf, _, ids, mask = ragged
    eos = eos_in_some_rows(model, ids, mask)
    ours = generate(model, ids, 12, attention_mask=mask, do_sample=True, seed=7, eos_token_id=eos, **kw)
    torch.manual_seed(7)
    assert torch.equal(ours, hf_generate(hf, ids, mask, 12, do_sample=True, eos_token_id=eos, **kw))
    assert torch.equal(ours, generate(model, ids, 12, attention_mask=mask, do_sample=True, seed=7, eos_token_id=eos,
                                      use_cache=False, **kw))


def test_beam_search_ragged_batch_matches_transformers(ragged) -> None:
    model, hf, prompts, ids, mask = ragged
    eos = eos_in_some_rows(model, ids, mask)
    for nb, n, lpen, es in ((3, 2, 1.0, False), (4, 4, 1.5, True), (2, 1, 0.7, "never")):
        kw = dict(num_beams=nb, num_return_sequences=n, length_penalty=lpen, early_stopping=es, eos_token_id=eos)
        ours = generate(model, ids, 10, attention_mask=mask, **kw)
        assert torch.equal(ours, hf_generate(hf, ids, mask, 10, **kw)), kw
        assert torch.equal(ours, generate(model, ids, 10, attention_mask=mask, use_cache=False, **kw)), kw
    # each prompt's best beam is its best beam alone (same generated length: the padding only shifts it)
    batch = beam_search(model, ids, 8, attention_mask=mask, num_beams=3)
    for b, p in enumerate(prompts):
        alone = beam_search(model, p, 8, num_beams=3)
        assert batch.sequences[b, ids.size(1):].tolist() == alone.sequences[0, len(p):].tolist()
        assert abs(float(batch.scores[b]) - float(alone.scores[0])) < 1e-4


def test_llama_ragged_greedy_matches_transformers() -> None:
    model = make_model(3, 97, 2, 32, 4, **LLAMA_SWITCHES, n_kv_head=2)
    hf = model.to_hf().eval()
    g = torch.Generator().manual_seed(3)
    ids, mask = left_pad([torch.randint(1, 97, (n,), generator=g).tolist() for n in LENGTHS], pad=0)
    ours = generate(model, ids, 10, attention_mask=mask)
    assert torch.equal(ours, hf_generate(hf, ids, mask, 10))
    assert torch.equal(ours, generate(model, ids, 10, attention_mask=mask, use_cache=False))


def test_contrastive_and_diverse_beams_decode_each_row_as_alone(ragged) -> None:
    model, _, prompts, ids, mask = ragged
    cs = contrastive_search(model, ids, 8, attention_mask=mask, penalty_alpha=0.6, top_k=3)
    assert torch.equal(cs, contrastive_search(model, ids, 8, attention_mask=mask, penalty_alpha=0.6, top_k=3,
                                              use_cache=False))
    dbs = diverse_beam_search(model, ids, 6, attention_mask=mask, num_beams=4, num_beam_groups=2,
                              num_return_sequences=2)
    for b, p in enumerate(prompts):
        alone = contrastive_search(model, p, 8, penalty_alpha=0.6, top_k=3)[0, len(p):]
        assert cs[b, ids.size(1):].tolist() == alone.tolist()
        d = diverse_beam_search(model, p, 6, num_beams=4, num_beam_groups=2, num_return_sequences=2)
        assert dbs.sequences[2 * b:2 * b + 2, ids.size(1):].tolist() == d.sequences[:, len(p):].tolist()
    step = next_token_step(model, ids, attention_mask=mask)
    alone = next_token_step(model, prompts[0])
    assert step.token_ids == alone.token_ids


def test_right_padding_warns_once_and_shows_why(ragged) -> None:
    model, _, prompts, _, _ = ragged
    T = max(len(p) for p in prompts)
    right = torch.tensor([p + [0] * (T - len(p)) for p in prompts])
    right_mask = torch.tensor([[1] * len(p) + [0] * (T - len(p)) for p in prompts])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = generate(model, right, 8, attention_mask=right_mask)
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and "right padding" in said[0] and "left" in said[0], said
    # the full-length row is unharmed; a padded row's next token is predicted from a pad, not from its text
    first = generate(model, prompts[0], 8)[0, len(prompts[0]):]
    assert out[0, T:].tolist() == first.tolist()
    for b, p in enumerate(prompts):
        if len(p) < T:
            with pytest.warns(UserWarning, match="right padding"):
                got = next_token_step(model, right[b:b + 1], attention_mask=right_mask[b:b + 1])
            want = next_token_step(model, p)
            assert max(abs(x - y) for x, y in zip(got.probs["raw"], want.probs["raw"])) > 1e-3 or \
                got.token_ids != want.token_ids


# --------------------------------------------------------------------------------------
# streaming
# --------------------------------------------------------------------------------------
STORY = ("the cat sat on the mat. the dog sat on the log. once upon a time there was a cat.\n" * 30
         + "Un café? naïve 😀 日本語\n")


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    """A small byte-level BPE (the course's, and the same files loaded by transformers) and a tiny
    random model on its vocabulary; its few merges leave café, 😀 and 日本語 split into bytes."""
    from transformers import AutoTokenizer

    from course_lib.tokenizer import BPETokenizer

    tok = BPETokenizer.train(STORY, vocab_size=300)
    d = tmp_path_factory.mktemp("bpe")
    tok.save(d)
    hf_tok = AutoTokenizer.from_pretrained(d)
    vocab = max([*tok.vocab, *tok.special_tokens.values()]) + 1
    return tok, hf_tok, make_model(5, vocab, 1, 16, 2), tok.special_tokens["<|endoftext|>"]


def test_streamer_holds_back_split_characters(bpe) -> None:
    tok, hf_tok, _, _ = bpe
    text = "Un café? 😀 日本語, naïve"
    ids = tok.encode(text)
    assert any("\ufffd" in tok.decode([i]) for i in ids), "the text should split a character across tokens"
    for t in (tok, hf_tok):
        pieces: list[str] = []
        streamer = TextStreamer(t, on_text=lambda row, piece, pieces=pieces: pieces.append(piece))
        streamer.put(torch.tensor([ids[:1]]))
        for i in ids[1:]:
            streamer.put(torch.tensor([i]))
        streamer.end()
        assert "".join(pieces) == text and not any("\ufffd" in p for p in pieces)
        assert len(pieces) == len(ids) and "" in pieces, "one piece per token; split characters waited"
    # an unfinished character at the end shows as U+FFFD, as decode shows it
    cut = [i for i in ids if "\ufffd" in tok.decode([i])][:1]
    pieces = []
    streamer = TextStreamer(tok, on_text=lambda row, piece: pieces.append(piece))
    streamer.put(torch.tensor([cut]))
    assert "\ufffd" not in "".join(pieces)  # the complete part only (a space)
    streamer.end()
    assert "".join(pieces) == tok.decode(cut)


def test_generate_streams_to_transformers_and_course_streamers(bpe, capsys) -> None:
    from transformers import TextIteratorStreamer
    from transformers import TextStreamer as HFTextStreamer

    tok, hf_tok, model, eot = bpe
    prompt = tok.encode("the dog sat")
    out = generate(model, prompt, 10, do_sample=True, seed=3, streamer=HFTextStreamer(hf_tok))
    assert capsys.readouterr().out == hf_tok.decode(out[0]) + "\n"
    course = TextStreamer(tok, skip_prompt=True)
    out = generate(model, prompt, 10, do_sample=True, seed=3, streamer=course)
    assert capsys.readouterr().out == tok.decode(out[0, len(prompt):].tolist()) + "\n"
    assert course.texts == [tok.decode(out[0, len(prompt):].tolist())]
    it = TextIteratorStreamer(hf_tok, skip_prompt=True)
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(out=generate(model, prompt, 10, streamer=it)))
    worker.start()
    streamed = "".join(it)
    worker.join()
    assert streamed == hf_tok.decode(result["out"][0, len(prompt):])
    # a batch: one piece list per row, the eos id shown as nothing
    ids, mask = left_pad([prompt, tok.encode("A")], pad=0)
    rows: dict[int, str] = {}
    streamer = TextStreamer(tok, skip_prompt=True, skip_ids={eot},
                            on_text=lambda row, piece: rows.__setitem__(row, rows.get(row, "") + piece))
    out = generate(model, ids, 8, attention_mask=mask, streamer=streamer, eos_token_id=eot)
    for b in range(2):
        new = [i for i in out[b, ids.size(1):].tolist() if i != eot]
        assert rows.get(b, "") == tok.decode(new)
    with pytest.raises(CourseInputError, match="one text"):
        generate(model, ids, 2, attention_mask=mask, streamer=TextStreamer(tok))
    with pytest.raises(CourseInputError, match="beam"):
        generate(model, prompt, 2, num_beams=2, streamer=TextStreamer(tok))


# --------------------------------------------------------------------------------------
# stop strings
# --------------------------------------------------------------------------------------
def test_stop_strings_follow_transformers_examples(bpe) -> None:
    """transformers' StopStringCriteria docstring: which token sequences end at "stop"."""
    tok, _, _, _ = bpe

    class Pieces:  # a tokenizer whose tokens are the given strings
        def __init__(self, pieces):
            self.pieces = pieces

        def decode(self, ids):
            return "".join(self.pieces[i] for i in ids)

    for pieces, stops in (
        (["st", "op"], True), (["stop"], True), (["st", "opera"], True), (["sto", "pper"], True),
        (["las", "topper"], True), (["s", "to", "pped"], True),
        (["stop", "at"], False), (["st", "op", "at"], False), (["st", "opera", "tion"], False),
    ):
        crit = StopStrings(Pieces(pieces), ["stop"])
        assert crit.ends(list(range(len(pieces)))) is stops, pieces
    # a character split across tokens: the stop string ends with its last byte
    ids = tok.encode("a日")
    assert len(ids) > 2
    crit = StopStrings(tok, ["日"])
    assert [crit.ends(ids[:n]) for n in range(1, len(ids) + 1)] == [False] * (len(ids) - 1) + [True]
    for bad in ([""], [], ["ok", ""]):
        with pytest.raises(CourseInputError, match="empty"):
            StopStrings(tok, bad)
    with pytest.raises(CourseInputError, match="tokenizer"):
        StopStrings(None, ["x"])


def test_stop_strings_match_transformers(bpe) -> None:
    tok, hf_tok, model, eot = bpe
    ids, mask = left_pad([tok.encode("the cat"), tok.encode("once upon a time there"), tok.encode("a")], pad=eot)
    free = generate(model, ids, 16, attention_mask=mask)
    T = ids.size(1)
    # stop strings cut from what row 0 and row 1 really write, across a token boundary
    stops = []
    for b in (0, 1):
        new = free[b, T:].tolist()
        for j in range(2, 12):
            a, c = tok.decode_bytes([new[j]]), tok.decode_bytes([new[j + 1]])
            try:
                s = (a[-2:] + c[:2]).decode("utf-8")
            except UnicodeDecodeError:
                continue
            if s.strip() and len(s) >= 2:
                stops.append(s)
                break
    assert len(stops) == 2, stops
    hf = model.to_hf().eval()
    for kw in (dict(do_sample=False), dict(do_sample=True, top_k=20), dict(do_sample=False, eos_token_id=eot),
               dict(do_sample=True, top_k=0, eos_token_id=eot)):
        ours = generate(model, ids, 16, attention_mask=mask, stop_strings=stops, tokenizer=tok, pad_token_id=eot,
                        seed=11, **kw)
        torch.manual_seed(11)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = hf.generate(ids, attention_mask=mask, max_new_tokens=16, stop_strings=stops, tokenizer=hf_tok,
                              pad_token_id=eot, **kw)
        assert torch.equal(ours, ref), (kw, stops)
    # greedy with an eos id: rows 0 and 1 stop at the token that completes their stop string, then pad
    ours = generate(model, ids, 16, attention_mask=mask, stop_strings=stops, tokenizer=tok, eos_token_id=eot)
    for b in (0, 1):
        new = [i for i in ours[b, T:].tolist() if i != eot]
        crit = StopStrings(tok, stops)
        assert crit.ends(ids[b].tolist() + new), "the row ends with a stop string"
        assert not any(crit.ends(ids[b].tolist() + new[:n]) for n in range(1, len(new))), "it stopped at the first"
    with pytest.raises(CourseInputError, match="empty"):
        generate(model, ids, 4, attention_mask=mask, stop_strings=[""], tokenizer=tok)
