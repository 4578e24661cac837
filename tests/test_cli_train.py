"""`course train`: the original command end to end, refusal to touch an existing folder, resume,
the output folder in transformers' pipeline, and one clear line for each kind of bad input."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
import torch

from course_lib.cli import build_parser, main
from course_lib.model import GPT
from course_lib.train import COMMAND_LINE, read_train_state

ORIGINAL = ["train", "--train_txt", "data/train_aug_50000.txt", "--tokenizer_dir", "outputs/tokenizer_8k_50k",
            "--seq_len", "256", "--epochs", "8", "--batch_size", "16"]
SMALL = ["--n_layer", "1", "--n_head", "2", "--n_embd", "16", "--eval_batches", "1", "--eval_interval", "100",
         "--no_progress"]


def _corpus(n_lines: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = "the a cat dog sat on mat ran far and then slept under big red tree by river".split()
    return "\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(4, 10))) + "." for _ in range(n_lines))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data/train_aug_50000.txt (tiny) and outputs/tokenizer_8k_50k made by `course train-tokenizer`."""
    root = tmp_path_factory.mktemp("cli_train")
    (root / "data").mkdir()
    (root / "data" / "train_aug_50000.txt").write_text(_corpus(700), encoding="utf-8")
    assert main(["train-tokenizer", "--text", str(root / "data" / "train_aug_50000.txt"), "--vocab_size", "300",
                 "--out", str(root / "outputs" / "tokenizer_8k_50k")]) == 0
    return root


def _tree_digest(d: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        h.update(str(p.relative_to(d)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def test_the_original_command_parses_verbatim_with_the_original_default_out():
    args = build_parser().parse_args(ORIGINAL)
    assert (args.train_txt, args.tokenizer_dir, args.seq_len, args.epochs, args.batch_size) == (
        "data/train_aug_50000.txt", "outputs/tokenizer_8k_50k", 256, 8.0, 16)
    assert args.out == "outputs/mini_gpt2_med" and args.impl == "course" and not args.overwrite


def test_every_cli_default_is_its_dataclass_default():
    """`course train`'s flags come from TrainConfig and GPTConfig fields: each default is the named
    recipe's value (train.COMMAND_LINE, cli.train.command_line_model()), every TrainConfig field has a
    flag or a stated reason, and the recipe differs from TrainConfig() only where it says so."""
    import dataclasses

    from course_lib.cli import train as cli_train
    from course_lib.train import TrainConfig

    args = build_parser().parse_args(["train", "--train_txt", "t.txt", "--tokenizer_dir", "tok"])
    for flag, (name, _) in cli_train.TRAIN_FLAGS.items():
        expected = None if name in cli_train.DERIVED else getattr(COMMAND_LINE, name)
        assert getattr(args, flag[2:]) == expected, (flag, getattr(args, flag[2:]), expected)
    model = cli_train.command_line_model()
    for flag, (name, _) in cli_train.MODEL_FLAGS.items():
        expected = None if name == "n_positions" else getattr(model, name)  # n_positions: --seq_len
        assert getattr(args, flag[2:]) == expected, (flag, getattr(args, flag[2:]), expected)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    covered = {name for name, _ in cli_train.TRAIN_FLAGS.values()} | set(cli_train.NOT_FLAGS)
    assert covered == fields, f"TrainConfig fields without a flag: {sorted(fields - covered)}"
    assert set(cli_train.DERIVED) <= covered
    recipe_changes = {f for f in fields if getattr(COMMAND_LINE, f) != getattr(TrainConfig(), f)}
    assert recipe_changes == {"seq_len", "batch_size", "epochs", "sample_prompt", "sample_tokens"}
    assert (args.lr, args.beta2, args.dropout) == (TrainConfig().lr, TrainConfig().beta2, 0.1)  # reconciled


def test_original_command_end_to_end_then_refuse_overwrite_resume(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    assert main(ORIGINAL + SMALL) == 0
    out = workdir / "outputs" / "mini_gpt2_med"
    printed = capsys.readouterr().out
    assert printed.index("parameters") < printed.index("saved to")  # the plan comes first
    for word in ("steps", "device", "precision", "measured on the first 3 steps"):
        assert word in printed
    state = read_train_state(out)
    assert state["step"] == state["total_steps"] > 0
    for name in ("config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json"):
        assert (out / name).is_file(), name

    # the folder is a Hugging Face model folder: pipeline("text-generation") loads and runs it
    from transformers import pipeline

    pipe = pipeline("text-generation", model=str(out), device="cpu")
    ids = pipe.tokenizer("the cat sat", return_tensors="pt").input_ids
    ours = GPT.from_pretrained(out).eval()
    torch.testing.assert_close(pipe.model(ids).logits, ours(ids).logits, rtol=1e-4, atol=1e-5)
    text = pipe("the cat", max_new_tokens=5, do_sample=False)[0]["generated_text"]
    assert text.startswith("the cat")

    # a second run without --overwrite refuses, says so, and changes nothing
    before = _tree_digest(out)
    assert main(ORIGINAL + SMALL) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err and "--resume" in err and "Traceback" not in err
    assert _tree_digest(out) == before

    # --resume on a finished run has nothing to do; with more steps it continues
    assert main(ORIGINAL + SMALL + ["--resume"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    done = state["step"]
    assert main(ORIGINAL + SMALL + ["--resume", "--max_steps", str(done + 2)]) == 0
    assert read_train_state(out)["step"] == done + 2
    assert "resuming at step" in capsys.readouterr().out
    # resuming with another model shape is refused, naming the difference
    before = _tree_digest(out)
    assert main(ORIGINAL + SMALL + ["--n_embd", "32", "--resume", "--max_steps", "99"]) == 2
    assert "n_embd: checkpoint 16, now 32" in capsys.readouterr().err
    assert main(ORIGINAL + SMALL + ["--lr", "0.1", "--resume", "--max_steps", "99"]) == 2
    assert f"lr: checkpoint {COMMAND_LINE.lr}, now 0.1" in capsys.readouterr().err
    assert _tree_digest(out) == before

    # --overwrite starts again
    assert main(ORIGINAL + SMALL + ["--overwrite", "--max_steps", "2"]) == 0
    assert read_train_state(out)["step"] == 2


def test_impl_hf_trains_gpt2lmheadmodel_with_the_same_loop(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    out = workdir / "hf_run"
    assert main(ORIGINAL + SMALL + ["--impl", "hf", "--max_steps", "3", "--out", str(out)]) == 0
    assert read_train_state(out)["model"]["class"] == "GPT2LMHeadModel"
    from transformers import pipeline

    assert pipeline("text-generation", model=str(out), device="cpu")("the", max_new_tokens=3)[0]["generated_text"]


def test_course_tokenizer_folder_works_too(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    tok = workdir / "tok_course"
    assert main(["train-tokenizer", "--impl", "course", "--text", "data/train_aug_50000.txt", "--vocab_size", "280",
                 "--out", str(tok)]) == 0
    out = workdir / "course_tok_run"
    args = ORIGINAL[:4] + [str(tok)] + ORIGINAL[5:]
    assert main(args + SMALL + ["--max_steps", "2", "--out", str(out)]) == 0
    assert (out / "vocab.json").is_file()


@pytest.mark.parametrize("extra, message", [
    (["--tokenizer_dir", "no/such/folder"], "--tokenizer_dir: folder not found"),
    (["--tokenizer_dir", "data"], "--tokenizer_dir: "),
    (["--seq_len", "64", "--n_positions", "32"], "longer than the model's context (n_positions=32)"),
    (["--batch_size", "4096"], "smaller than one batch"),
    (["--seq_len", "8", "--batch_size", "4", "--max_steps", "1", "--resume"], "holds no checkpoint"),
])
def test_bad_input_gets_one_clear_line(workdir, monkeypatch, capsys, extra, message):
    monkeypatch.chdir(workdir)
    out = workdir / "bad_run"
    assert main(ORIGINAL + SMALL + ["--out", str(out)] + extra) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not out.exists()  # nothing was created


def test_corpus_smaller_than_a_batch_suggests_smaller_flags(workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    (workdir / "small.txt").write_text(_corpus(40, seed=3), encoding="utf-8")
    assert main(["train", "--train_txt", "small.txt", "--tokenizer_dir", "outputs/tokenizer_8k_50k",
                 "--seq_len", "256", "--batch_size", "16", "--out", str(workdir / "x")]) == 2
    err = capsys.readouterr().err
    assert "smaller than one batch" in err and "--seq_len (at most" in err and "--batch_size" in err
