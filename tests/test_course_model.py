"""The course's shipped pretrained model (course_lib/assets/shakespeare-gpt2) and the script that trains it.

What the learner runs is what is tested: the shipped weights and the shipped corpus. The model card's
figures (results.json) are measured again here and must agree with it; transformers loads the folder.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib import interp, pretrained
from course_lib.data import load_corpus

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = pretrained.course_model_dir()
DRAFT = pretrained.course_model_dir(draft=True)


def script():
    """scripts/train_course_model.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("train_course_model", ROOT / "scripts" / "train_course_model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_course_model"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def course_model():
    return pretrained.load_course_model(verbose=False)


@pytest.fixture(scope="module")
def card() -> dict:
    return pretrained.course_model_card()


def test_the_folder_is_a_hugging_face_gpt2_folder_that_transformers_loads(course_model) -> None:
    from transformers import GPT2LMHeadModel, GPT2TokenizerFast, pipeline

    model, tok = course_model
    config = json.loads((SHIPPED / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "gpt2" and config["n_positions"] >= 256
    size = sum(p.stat().st_size for p in SHIPPED.iterdir())
    assert size <= 26 * 2**20, f"the shipped folder is {size / 2**20:.1f} MiB"
    for name in ("README.md", "results.json", "recipe.json", "training_log.jsonl", "loss_curve.png", "vocab.json",
                 "merges.txt"):
        assert (SHIPPED / name).is_file(), name
    hf = GPT2LMHeadModel.from_pretrained(SHIPPED).eval()
    hf_tok = GPT2TokenizerFast.from_pretrained(SHIPPED)
    text = load_corpus("shakespeare", verbose=False)[:400]
    ids = tok.encode(text)
    assert hf_tok(text)["input_ids"] == ids, "transformers' tokenizer reads the same merges"
    x = torch.tensor([ids[:128]])
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, hf(x).logits, rtol=1e-4, atol=1e-4)
    out = pipeline("text-generation", model=hf, tokenizer=hf_tok)("ROMEO:", max_new_tokens=8, do_sample=False)
    assert out[0]["generated_text"].startswith("ROMEO:")


def test_the_model_card_figures_are_what_the_model_measures(course_model, card) -> None:
    """Validation loss per character over the whole split, head scores and the ablation effect, again."""
    mod = script()
    model, tok = course_model
    recipe = mod.Recipe(**{k: v for k, v in json.loads((SHIPPED / "recipe.json").read_text()).items()
                           if k in {f.name for f in mod.dataclasses.fields(mod.Recipe)}})
    text = load_corpus("shakespeare", verbose=False)
    _, val_text = mod.split_text(text, recipe.val_fraction)
    val_ids = np.asarray(tok.encode(val_text), dtype=np.int64)
    with torch.inference_mode():
        val = mod.val_loss_per_char(model, tok, val_ids, recipe.seq_len)
    assert val["chars"] == card["validation"]["chars"] == len(val_text) - len(tok.decode(val_ids[:1].tolist()))
    assert val["loss_per_char"] == pytest.approx(card["validation"]["loss_per_char"], abs=2e-3)

    ind = interp.induction_scores(model, period=20, batch=16, seed=0)  # (L, H)
    torch.testing.assert_close(ind, torch.tensor(card["induction_scores"]), atol=2e-3, rtol=0)
    heads = [(la, h) for la, h, _ in card["induction_heads"]]
    assert all(ind[la, h] >= 0.4 for la, h in heads)
    ablation = card["ablation"]
    ids = interp.repeated_tokens(recipe.vocab_size, ablation["period"], batch=ablation["rows"], seed=1)
    losses = interp.ablation_losses(model, ids, ablation["period"], {
        "induction heads": heads or [(0, 0)], "random other head": [tuple(ablation["control_head"])]})
    for name, loss in losses.items():
        assert loss == pytest.approx(ablation[name], abs=2e-3), name


def test_the_draft_shares_the_tokenizer_and_is_small(course_model) -> None:
    model, tok = course_model
    draft, draft_tok = pretrained.load_course_model(draft=True, verbose=False)
    assert draft.config.vocab_size == model.config.vocab_size
    assert (DRAFT / "vocab.json").read_bytes() == (SHIPPED / "vocab.json").read_bytes()
    assert (DRAFT / "merges.txt").read_bytes() == (SHIPPED / "merges.txt").read_bytes()
    assert draft.num_parameters() * 4 < model.num_parameters()
    assert pretrained.is_course_model(draft) and pretrained.prompt_for(draft) == "ROMEO:"


def test_load_says_what_it_loaded_in_one_line(capsys) -> None:
    pretrained.load_course_model()
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "shakespeare-gpt2" in out[0] and "nats per character" in out[0]


def test_the_training_script_runs_a_few_steps_and_its_folder_loads(tmp_path: Path, monkeypatch) -> None:
    """Both phases for three steps each at a tiny size, then --card writes a folder that loads."""
    mod = script()
    short = load_corpus("shakespeare", verbose=False)[:40_000]
    monkeypatch.setattr(mod, "load_corpus", lambda name, verbose=False: short)
    tiny = ["--set", "vocab_size=300", "n_layer=2", "n_head=2", "n_embd=32", "seq_len=64", "repeat_max=32",
            "batch_size=4", "eval_batches=2", "induction_batch=4"]
    out, dest = tmp_path / "run", tmp_path / "shipped"
    assert mod.main(["--out", str(out), "--max_steps", "3", *tiny]) == 0
    assert json.loads((out / "phase1" / "done.json").read_text())["steps"] == 3
    assert mod.main(["--out", str(out), "--card", "--dest", str(dest), *tiny]) == 0
    model, tok = pretrained.load_folder(dest)
    assert model.config.n_layer == 2 and len(tok.encode("ROMEO:")) >= 1
    results = json.loads((dest / "results.json").read_text())
    assert results["validation"]["loss_per_char"] > 0
    assert (dest / "README.md").read_text().startswith("---\nlicense: mit")  # a Hugging Face model card
    assert set(results["phases"]) == {"1", "2", "3", "4"}


def test_a_recipe_tried_and_not_shipped_is_measured_for_the_card(tmp_path: Path, monkeypatch) -> None:
    """`--side DIR` measures another run's best evaluation over the whole validation split; the card lists it."""
    import shutil

    mod = script()
    short = load_corpus("shakespeare", verbose=False)[:40_000]
    monkeypatch.setattr(mod, "load_corpus", lambda name, verbose=False: short)
    tiny = ["vocab_size=300", "n_layer=2", "n_head=2", "n_embd=32", "seq_len=64", "repeat_share=0", "batch_size=4",
            "eval_batches=2", "eval_interval=2", "induction_max_steps=0", "refresh_max_steps=0", "polish_steps=0"]
    out, side, dest = tmp_path / "run", tmp_path / "wider", tmp_path / "shipped"
    with pytest.raises(SystemExit, match="repeat_max=96 written twice does not fit seq_len=64"):  # one clear line
        mod.main(["--out", str(tmp_path / "bad"), "--max_steps", "1", "--set", *tiny, "repeat_share=0.15"])
    assert mod.main(["--out", str(out), "--max_steps", "4", "--set", *tiny]) == 0
    assert mod.main(["--out", str(side), "--max_steps", "2", "--set", *tiny, "vocab_size=290"]) == 0
    with pytest.raises(SystemExit, match="tokenizer"):  # a side run with its own tokenizer does not compare
        mod.main(["--out", str(out), "--side", str(side), "--set", *tiny])
    shutil.rmtree(side)
    shutil.copytree(out / "tokenizer", side / "tokenizer")
    assert mod.main(["--out", str(side), "--max_steps", "4", "--set", *tiny, "n_embd=48", "eval_interval=1"]) == 0
    assert mod.main(["--out", str(out), "--side", str(side), "--set", *tiny]) == 0
    row, = json.loads((out / "side_runs.json").read_text())
    assert row["changed"] == {"n_embd": [32, 48]}  # eval_interval shapes nothing the card compares
    assert [s for s, _ in row["evaluations"]] == [1, 2, 3, 4] and row["steps_run"] == 4
    assert row["best_step"] == min(row["evaluations"], key=lambda e: e[1])[0]
    tok, _, val_ids, _ = mod.prepare(mod.Recipe(), out)
    best = mod.GPT.from_pretrained(side / "snapshots" / f"step_{row['best_step']}")
    assert row["loss_per_char"] == pytest.approx(mod.val_loss_per_char(best, tok, val_ids, 64)["loss_per_char"],
                                                 abs=1e-4)
    assert mod.main(["--out", str(out), "--card", "--dest", str(dest), "--set", *tiny]) == 0
    text = (dest / "README.md").read_text()
    assert "Other recipes tried, not shipped" in text and f"| n_embd 32 -> 48 | 0.1M | 4 | {row['best_step']} " in text


def test_a_recipe_change_between_sittings_is_recorded_for_the_card(tmp_path: Path) -> None:
    """`--set` on a resume changes the recipe; recipe_changes.json keeps what changed, and when."""
    mod = script()
    mod._record_changes(tmp_path, mod.Recipe())
    mod._record_changes(tmp_path, mod.Recipe(threads=1))  # the thread count shapes nothing: no change
    assert not (tmp_path / "recipe_changes.json").exists()
    mod._record_changes(tmp_path, mod.Recipe(dropout=0.1, max_steps=5_000))
    rows = json.loads((tmp_path / "recipe_changes.json").read_text())
    assert rows[0]["changed"] == {"dropout": [mod.Recipe().dropout, 0.1], "max_steps": [mod.Recipe().max_steps, 5_000]}
    assert json.loads((tmp_path / "recipe.json").read_text())["dropout"] == 0.1
    story = mod._phase_story({}, mod.Recipe(dropout=0.1, max_steps=5_000), rows, {"language": 1.5, "copy": 2.0})
    assert f"dropout {mod.Recipe().dropout}," in story and "dropout 0.2 -> 0.1" in story and "1.500 to 2.000" in story
