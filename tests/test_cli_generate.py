"""`course generate`: loads a model folder with its tokenizer and prints what generate() makes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from course_lib.cli import main
from course_lib.cli.generate import add_arguments, decoding_settings
from course_lib.generate import DecodingSettings, contrastive_search, generate
from course_lib.model import GPT, GPTConfig
from course_lib.tokenizer import BPETokenizer

TEXT = "the cat sat on the mat. the dog sat on the log. a cat and a dog met on a mat.\n" * 20


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("mini_gpt")
    tok = BPETokenizer.train(TEXT, vocab_size=300)
    torch.manual_seed(0)
    vocab = max([*tok.vocab, *tok.special_tokens.values()]) + 1
    model = GPT(GPTConfig(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=4))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" not in name:
                p.normal_(0, 0.3)
    model.save_pretrained(d)
    tok.save(d)
    return d


def expected(d: Path, prompt: str, n: int, fn=generate, **kw) -> list[str]:
    tok = BPETokenizer.load(d)
    model = GPT.from_pretrained(d).eval()
    ids = tok.encode(prompt)
    eos = tok.special_tokens["<|endoftext|>"]
    out = fn(model, ids, n, eos_token_id=eos, **kw)
    texts = []
    for row in out.tolist():
        new = row[len(ids):]
        new = new[: new.index(eos)] if eos in new else new
        texts.append(tok.decode(ids + new))
    return texts


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["generate", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_greedy_top_p_and_beams_print_what_generate_makes(model_dir: Path, capsys) -> None:
    code, out, _ = run_cli(capsys, "--model_dir", str(model_dir), "--prompt", "the cat", "--max_new_tokens", "12")
    assert code == 0 and out.strip() == expected(model_dir, "the cat", 12)[0].strip()
    code, out, _ = run_cli(capsys, "--model-dir", str(model_dir), "--prompt", "the cat", "--strategy", "top_p",
                           "--top_p", "0.9", "--max_new_tokens", "12", "--seed", "7")
    # (strip both: a sampled text may end in white space, which the printed line loses)
    assert code == 0 and out.strip() == expected(model_dir, "the cat", 12, do_sample=True, top_p=0.9, seed=7)[0].strip()
    code, out, _ = run_cli(capsys, "--model_dir", str(model_dir), "--prompt", "a dog", "--strategy", "beam",
                           "--num_beams", "3", "--num_return_sequences", "2", "--max_new_tokens", "8")
    want = expected(model_dir, "a dog", 8, num_beams=3, num_return_sequences=2)
    assert code == 0 and "--- 2 of 2 ---" in out
    assert [t.strip() for t in out.split("---") if t.strip() and " of 2" not in t] == [w.strip() for w in want]
    code, out, _ = run_cli(capsys, "--model_dir", str(model_dir), "--prompt", "a dog", "--strategy", "contrastive",
                           "--max_new_tokens", "8", "--no_cache")
    assert code == 0 and out.strip() == expected(model_dir, "a dog", 8, fn=contrastive_search)[0].strip()


def test_strategies_fill_in_their_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    def settings(*extra: str) -> DecodingSettings:
        return decoding_settings(parser.parse_args(["--model_dir", "x", "--prompt", "p", *extra]))

    assert settings() == DecodingSettings()  # greedy: every default
    assert settings("--strategy", "top_k").top_k == 50 and settings("--strategy", "top_k").do_sample
    assert settings("--strategy", "top_k", "--top_k", "7").top_k == 7
    assert settings("--strategy", "top_p").top_p == 0.9 and settings("--strategy", "top_p").top_k is None
    assert settings("--strategy", "min_p").min_p == 0.05
    assert settings("--strategy", "typical").typical_p == 0.9
    assert settings("--strategy", "beam", "--early_stopping").early_stopping is True
    assert settings("--strategy", "beam").num_beams == 4 and settings("--strategy", "beam").num_beam_groups == 1
    assert settings("--strategy", "diverse_beam").num_beam_groups == 2
    contrastive = settings("--strategy", "contrastive", "--num_return_sequences", "3")
    assert (contrastive.penalty_alpha, contrastive.top_k, contrastive.num_return_sequences) == (0.6, 4, 1)


@pytest.mark.parametrize("argv, words", [
    (["--strategy", "top_p", "--top_p", "1.5"], "top_p"),
    (["--strategy", "sample", "--temperature", "-1"], "temperature"),
    (["--strategy", "top_k", "--top_k", "-3"], "top_k"),
    (["--strategy", "beam", "--num_beams", "0"], "num_beams"),
    (["--prompt", ""], "prompt"),
])
def test_bad_flags_print_one_line_and_exit_2(model_dir: Path, capsys, argv, words) -> None:
    base = ["--model_dir", str(model_dir), "--prompt", "the cat", "--max_new_tokens", "3"]
    code, _, err = run_cli(capsys, *base, *argv)
    assert code == 2 and words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_folders_are_named(tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(capsys, "--model_dir", str(tmp_path / "nope"), "--prompt", "x")
    assert code == 2 and "nope" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "--model_dir", str(tmp_path / "empty"), "--prompt", "x")
    assert code == 2 and "empty" in err


def test_a_transformers_tokenizer_folder_works_too(model_dir: Path, tmp_path: Path, capsys) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator([TEXT], trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    from tokenizers import decoders

    tok.decoder = decoders.ByteLevel()
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    (tmp_path / "hf_tok").mkdir()
    hf_tok.save_pretrained(tmp_path / "hf_tok")
    for name in ("vocab.json", "merges.txt"):  # leave only tokenizer.json: the course loader cannot read it
        (tmp_path / "hf_tok" / name).unlink(missing_ok=True)
    code, out, err = run_cli(capsys, "--model_dir", str(model_dir), "--tokenizer_dir", str(tmp_path / "hf_tok"),
                             "--prompt", "the dog", "--max_new_tokens", "6")
    assert code == 0, err
    model = GPT.from_pretrained(model_dir).eval()
    ids = hf_tok.encode("the dog")
    eos = hf_tok.eos_token_id
    new = generate(model, ids, 6, eos_token_id=eos)[0, len(ids):].tolist()
    new = new[: new.index(eos)] if eos in new else new
    assert out.strip() == hf_tok.decode(ids + new).strip()


# -- hub names: `--model_dir gpt2` (a locally saved GPT-2-format checkpoint stands in for the hub)

@pytest.fixture(scope="module")
def gpt2_standin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    from course_lib.tokenizer import gpt2_tokenizer

    d = tmp_path_factory.mktemp("hub") / "gpt2"
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=2, n_embd=32, n_positions=64))
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if "ln" not in name:
                p.normal_(0, 0.3)  # peaked distributions: greedy is not a tie-break lottery
    hf.save_pretrained(d)
    gpt2_tokenizer().save(d)
    return d


def test_a_hub_name_generates_through_the_hub_download(gpt2_standin: Path, monkeypatch, capsys) -> None:
    from course_lib import pretrained
    from course_lib.tokenizer import gpt2_tokenizer

    monkeypatch.setenv("COURSE_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    asked = []
    monkeypatch.setattr(pretrained, "_download", lambda repo, local_only: asked.append(repo) or gpt2_standin)
    code, out, err = run_cli(capsys, "--model_dir", "gpt2", "--prompt", "I enjoy walking with my cute dog",
                             "--max_new_tokens", "10")
    assert code == 0, err
    assert asked == ["gpt2"]
    tok = gpt2_tokenizer()
    ids = tok.encode("I enjoy walking with my cute dog")
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(gpt2_standin).eval()
    ref = hf.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                      max_new_tokens=10, do_sample=False, pad_token_id=50256, eos_token_id=50256)[0, len(ids):].tolist()
    ref = ref[: ref.index(50256)] if 50256 in ref else ref
    assert out.strip() == tok.decode(ids + ref).strip()


def test_a_local_folder_wins_over_a_hub_name(gpt2_standin: Path, monkeypatch, tmp_path: Path, capsys) -> None:
    from course_lib import pretrained

    def no_hub(repo: str, local_only: bool) -> Path:
        raise AssertionError("asked the hub although ./gpt2 exists")

    monkeypatch.setattr(pretrained, "_download", no_hub)
    (tmp_path / "gpt2").mkdir()
    for f in gpt2_standin.iterdir():
        (tmp_path / "gpt2" / f.name).write_bytes(f.read_bytes())
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "--model_dir", "gpt2", "--prompt", "Hello", "--max_new_tokens", "3")
    assert code == 0 and out.startswith("Hello"), err


def test_offline_a_hub_name_prints_one_line_and_exits_2(monkeypatch, tmp_path: Path, capsys) -> None:
    import huggingface_hub.constants as c

    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "empty_hf_cache"))
    monkeypatch.chdir(tmp_path)
    for name in ("gpt2", "gpt2-xl", "openai-community/gpt2"):
        code, out, err = run_cli(capsys, "--model_dir", name, "--prompt", "Hello")
        assert code == 2 and out == "" and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
        assert f"no folder {name!r} here" in err and "offline mode" in err and "--model_dir course" in err


def test_the_course_model_and_its_draft_by_name(monkeypatch, tmp_path: Path, capsys) -> None:
    from course_lib import pretrained

    monkeypatch.chdir(tmp_path)  # no local folder of that name
    for name, draft in (("course", False), ("course-draft", True)):
        code, out, err = run_cli(capsys, "--model_dir", name, "--prompt", "ROMEO:", "--max_new_tokens", "5",
                                 "--no-stream")
        assert code == 0, err
        assert out == expected(pretrained.course_model_dir(draft), "ROMEO:", 5)[0] + "\n"


# -- batches, streaming, stop strings (issue 28) ----------------------------------------

def test_several_prompts_are_one_left_padded_batch(model_dir: Path, capsys) -> None:
    code, out, err = run_cli(capsys, "--model_dir", str(model_dir), "--prompt", "the cat sat on the",
                             "--prompt", "a dog", "--max_new_tokens", "8")
    assert code == 0, err
    texts = [t.strip() for t in out.split("---") if t.strip() and " of 2" not in t]
    # each text is what its prompt gives alone
    alone = [expected(model_dir, p, 8)[0].strip() for p in ("the cat sat on the", "a dog")]
    assert texts == alone


def test_stream_prints_the_same_text_as_it_comes(model_dir: Path, capsys) -> None:
    base = ["--model_dir", str(model_dir), "--prompt", "the cat", "--max_new_tokens", "12"]
    code, plain, _ = run_cli(capsys, *base, "--no-stream")
    assert code == 0
    code, streamed, err = run_cli(capsys, *base, "--stream")
    assert code == 0 and streamed == plain and err == ""
    code, streamed, err = run_cli(capsys, *base, "--strategy", "top_p", "--seed", "3", "--stream")
    assert code == 0 and streamed.strip() == expected(model_dir, "the cat", 12, do_sample=True, top_p=0.9,
                                                      seed=3)[0].strip()
    code, out, err = run_cli(capsys, *base, "--strategy", "beam", "--stream")  # beams: printed when done
    assert code == 0 and out.strip() == expected(model_dir, "the cat", 12, num_beams=4)[0].strip()
    assert "--stream shows one text as it comes" in err and len(err.strip().splitlines()) == 1


def test_stop_strings_end_the_text(model_dir: Path, capsys) -> None:
    tok = BPETokenizer.load(model_dir)
    free = expected(model_dir, "the cat", 20)[0]
    new = free[len("the cat"):]
    stop = new[3:5]  # two characters the model really writes
    assert stop.strip()
    for stream in ("--stream", "--no-stream"):
        code, out, err = run_cli(capsys, "--model_dir", str(model_dir), "--prompt", "the cat", "--max_new_tokens", "20",
                                 "--stop", stop, "--stop", "zzz", stream)
        assert code == 0, err
        text = out.rstrip("\n")
        assert stop in text[len("the cat"):] and len(text) < len(free.rstrip("\n"))
        assert len(tok.encode(text)) < len(tok.encode(free))
    code, _, err = run_cli(capsys, "--model_dir", str(model_dir), "--prompt", "the cat", "--stop", "")
    assert code == 2 and "--stop" in err and "empty" in err and len(err.strip().splitlines()) == 1


def test_flags_a_strategy_does_not_read_are_named(model_dir: Path, capsys) -> None:
    code, out, err = run_cli(capsys, "--model_dir", str(model_dir), "--prompt", "the cat", "--max_new_tokens", "4",
                             "--top_p", "0.5", "--num_beams", "3")
    assert code == 0 and out.strip() == expected(model_dir, "the cat", 4)[0].strip()
    assert err.splitlines() == ["course generate: warning: --top_p does not apply to --strategy greedy; ignored",
                                "course generate: warning: --num_beams does not apply to --strategy greedy; ignored"]


def test_the_strategies_and_their_defaults_come_from_the_registry(capsys) -> None:
    from course_lib.generate import STRATEGIES

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    choices = next(a.choices for a in parser._actions if a.dest == "strategy")
    assert tuple(choices) == tuple(STRATEGIES)
    helps = {a.dest: a.help for a in parser._actions}
    assert "50 for top_k" in helps["top_k"] and "4 for contrastive" in helps["top_k"]
    for s in STRATEGIES.values():
        assert s.summary in helps["strategy"]
        args = parser.parse_args(["--model_dir", "x", "--prompt", "p", "--strategy", s.name])
        assert decoding_settings(args) == s.settings()


def test_stream_is_on_by_default_on_a_terminal(model_dir: Path, capsys, monkeypatch) -> None:
    import sys

    import course_lib.generate as gen

    made = []

    class Recording(gen.TextStreamer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(gen, "TextStreamer", Recording)
    base = ["--model_dir", str(model_dir), "--prompt", "the cat", "--max_new_tokens", "6"]
    code, out, _ = run_cli(capsys, *base)
    assert code == 0 and made == []  # not a terminal (captured): printed when done
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, streamed, _ = run_cli(capsys, *base)
    assert code == 0 and len(made) == 1 and streamed == out and made[0].texts == [out.rstrip("\n")]


def test_a_barely_trained_model_says_why_its_text_is_gibberish(model_dir: Path, tmp_path: Path, capsys) -> None:
    """A model folder whose training record shows a loss near a uniform guess's gets one line on stderr
    before its text; a well-trained one, or a folder with no record, gets none."""
    import json
    import math
    import shutil

    from course_lib.train import STATE_DIR

    vocab = GPT.from_pretrained(model_dir).config.vocab_size
    for name, loss, said in (("barely", 0.95 * math.log(vocab), True), ("trained", 0.3 * math.log(vocab), False)):
        d = tmp_path / name
        shutil.copytree(model_dir, d)
        (d / STATE_DIR).mkdir()
        (d / STATE_DIR / "trainer.json").write_text(json.dumps({
            "format": 1, "step": 10, "history": [{"step": 10, "loss": loss + 0.1}],
            "eval_history": [{"step": 10, "val_loss": loss}]}))
        code, out, err = run_cli(capsys, "--model_dir", str(d), "--prompt", "the cat", "--max_new_tokens", "5")
        assert code == 0 and out.strip()
        if said:
            assert err.count("\n") == 1 and err.startswith("course generate: note: this model trained 10 steps")
            assert f"{loss:.2f}" in err and "gibberish" in err and "--resume" in err
        else:
            assert err == ""
    code, out, err = run_cli(capsys, "--model_dir", str(model_dir), "--prompt", "the cat", "--max_new_tokens", "5")
    assert code == 0 and err == ""  # no training record: nothing to say


@pytest.fixture(scope="module")
def draft_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smaller model with the same vocabulary (the tokenizer stays in --model_dir)."""
    d = tmp_path_factory.mktemp("mini_draft")
    vocab = GPT.from_pretrained(model_dir).config.vocab_size
    torch.manual_seed(1)
    GPT(GPTConfig(vocab_size=vocab, n_positions=64, n_embd=16, n_layer=1, n_head=2)).save_pretrained(d)
    return d


def test_draft_model_decodes_speculatively_to_the_same_text(model_dir: Path, draft_dir: Path, capsys) -> None:
    base = ["--model_dir", str(model_dir), "--prompt", "the cat", "--max_new_tokens", "12", "--no-stream"]
    code, out, err = run_cli(capsys, *base, "--draft_model", str(draft_dir), "--num_assistant_tokens", "3")
    assert code == 0 and err == "" and out.strip() == expected(model_dir, "the cat", 12)[0].strip()
    streamed = ["--stream" if a == "--no-stream" else a for a in base]
    code, out_streamed, err = run_cli(capsys, *streamed, "--draft_model", str(draft_dir))
    assert code == 0 and err == "" and out_streamed == out  # the streamer gets each round's tokens as they come
    code, out, _ = run_cli(capsys, *base, "--draft_model", str(draft_dir), "--strategy", "top_p", "--seed", "3")
    assert code == 0 and out.strip().startswith("the cat")


def test_draft_model_with_another_vocabulary_is_one_line(model_dir: Path, tmp_path: Path, capsys) -> None:
    GPT(GPTConfig(vocab_size=77, n_positions=64, n_embd=16, n_layer=1, n_head=2)).save_pretrained(tmp_path)
    code, _, err = run_cli(capsys, "--model_dir", str(model_dir), "--prompt", "the cat", "--draft_model",
                           str(tmp_path), "--max_new_tokens", "3")
    assert code == 2 and "--draft_model" in err and "77" in err and "vocabulary" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv, words", [
    (["--strategy", "beam"], "greedy decoding and sampling"),
    (["--prompt", "a dog"], "one --prompt"),
    (["--no_cache"], "--no_cache"),
    (["--num_assistant_tokens", "0"], "num_assistant_tokens"),
])
def test_draft_model_refuses_what_it_cannot_do(model_dir: Path, draft_dir: Path, capsys, argv, words) -> None:
    code, _, err = run_cli(capsys, "--model_dir", str(model_dir), "--prompt", "the cat", "--max_new_tokens", "3",
                           "--draft_model", str(draft_dir), *argv)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_missing_draft_folder_is_named(model_dir: Path, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(capsys, "--model_dir", str(model_dir), "--prompt", "x", "--draft_model",
                           str(tmp_path / "nodraft"))
    assert code == 2 and "--draft_model" in err and "nodraft" in err
