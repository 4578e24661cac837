"""course_lib.toys: the small models of notebook 08 grow the heads the scores find, and are
trained once and cached, keyed by their settings (and text)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from course_lib import interp, toys
from course_lib.errors import CourseInputError
from course_lib.model import GPTConfig


@pytest.mark.slow
def test_a_previous_token_head_appears_in_a_char_model(capsys) -> None:
    """Reading characters, a layer-0 head learns to look one step back.

    The character model notebook 08 loads (`toys.CHAR`: 800 steps, seed 0, one thread, on Tiny
    Shakespeare), shipped with the course (course_lib/assets/toys), so no learner trains it; an
    untrained model's best is about 0.06, and uniform attention over 64 positions gives 0.06.
    """
    from course_lib.data import load_corpus

    text = load_corpus("shakespeare", verbose=False)
    sample = text[1000:1064]
    untrained, vocab = toys.train_char_model(text, steps=0, seed=0, verbose=False)
    before = interp.top_heads(interp.head_roles(untrained, vocab.encode(sample), period=24), "previous_token", 1)[0]
    model, vocab = toys.cached_char_model(text)
    assert Path(model.source).parent == toys.SHIPPED  # loaded, not trained
    roles = interp.head_roles(model, vocab.encode(sample), period=24)
    best = interp.top_heads(roles, "previous_token", 1)[0]
    uniform = sum(1 / (i + 1) for i in range(1, len(sample))) / (len(sample) - 1)
    with capsys.disabled():
        print(f"\n[previous token] {best.name} score {best.previous_token:.3f} "
              f"(untrained best {before.previous_token:.3f}, uniform {uniform:.3f})")
    assert best.layer == 0
    assert best.previous_token >= 0.3 and best.previous_token > 4 * uniform
    assert best.previous_token > 2 * before.previous_token
    hist = model.history  # recorded while it trained: the head forms as the loss falls
    assert hist["step"][0] == 0 and hist["step"][-1] == toys.CHAR.steps
    assert hist["previous_token"][0] < 0.15 < 0.3 <= hist["previous_token"][-1]
    assert hist["loss"][1] > hist["loss"][-1] + 1


@pytest.mark.slow
def test_the_copy_task_grows_an_induction_head_found_by_the_scores(capsys) -> None:
    """On random tokens repeated twice, layer 1 grows induction heads on a layer-0 previous-token head.

    The cached model notebook 08 loads (`toys.INDUCTION`: vocab 512, lr 1e-3, seed 1, 1,000
    steps on one thread, ~25 s of CPU time): every layer-1 head scores 0.89-0.92 on induction
    at period 20 (L1H2 best) and L0H2 0.49 on previous token; the untrained model's best scores
    are 0.03 and 0.08. Trained once (by this test or notebook 08, whichever comes first), then cached.
    """
    untrained = toys.train_induction_model(steps=0, verbose=False)
    before = interp.head_roles(untrained, period=20)
    model = toys.cached_induction_model()
    assert Path(model.source).parent == toys.SHIPPED  # loaded, not trained
    roles = interp.head_roles(model, period=20)
    ind = interp.top_heads(roles, "induction", 1)[0]
    prev = interp.top_heads([r for r in roles if r.layer == 0], "previous_token", 1)[0]
    ind0 = interp.top_heads(before, "induction", 1)[0]
    with capsys.disabled():
        print(f"\n[induction] {ind.name} induction {ind.induction:.3f}, {prev.name} previous token "
              f"{prev.previous_token:.3f} (untrained best induction {ind0.induction:.3f})")
    assert ind.layer == 1 and ind.induction >= 0.8 and ind0.induction < 0.1
    assert prev.previous_token >= 0.3  # the layer-0 head the induction head reads from
    # and the model copies: the second copy is predicted from the first
    x = interp.repeated_tokens(model.config.vocab_size, 20, batch=8, seed=3)
    with torch.no_grad():
        pred = model(x).logits[:, 20:-1].argmax(-1)
    assert (pred == x[:, 21:]).float().mean() > 0.9
    # the recorded history is the phase change: flat, then loss and induction score change together
    hist = model.history
    assert hist["step"][:3] == [0, 25, 50] and hist["step"][-1] == 1000
    assert hist["induction"][-1] == pytest.approx(ind.induction, abs=1e-3), "recorded on the same sequence"
    early = [i for i, s in enumerate(hist["step"]) if 0 < s <= 300]
    assert max(hist["induction"][i] for i in early) < 0.2 and min(hist["loss"][i] for i in early) > 5
    assert hist["loss"][-1] < 1


def _tiny_specs():
    small = GPTConfig(vocab_size=64, n_positions=16, n_layer=2, n_head=4, n_embd=16)
    return (toys.InductionSpec(steps=6, model=small, period=8, batch_size=4, record_every=3),
            toys.CharSpec(steps=4, model=small, batch_size=4, record_every=2))


def test_the_specs_hold_a_gpt_config_and_refuse_a_context_too_short() -> None:
    assert toys.INDUCTION.model == GPTConfig(vocab_size=512, n_positions=48, n_layer=2, n_head=4, n_embd=64)
    assert toys.CHAR.model.n_positions == 64  # the block of characters it reads
    with pytest.raises(CourseInputError, match="n_positions=16 cannot hold two copies of period 24"):
        toys.train_induction_model(toys.InductionSpec(model=_tiny_specs()[0].model), steps=0, verbose=False)


def test_the_cached_models_are_trained_once_keyed_by_settings_and_text(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    ind_spec, char_spec = _tiny_specs()
    text = "the cat sat on the mat. " * 20
    a = toys.cached_induction_model(ind_spec)
    m, vocab = toys.cached_char_model(text, char_spec)
    assert capsys.readouterr().out.count("trained once in") == 2
    assert a.history["step"] == [0, 3, 6] and a.history["loss"][0] is None and len(a.history["induction"]) == 3
    assert m.history["step"] == [0, 2, 4] and len(m.history["previous_token"]) == 3
    assert vocab.encode("cat") == toys.train_char_model(text, steps=0, verbose=False)[1].encode("cat")
    folders = sorted(p.name for p in (tmp_path / "demo_model").iterdir())
    assert [f.split("-")[0] for f in folders] == ["char", "induction"], "no temporary folders are left"

    def no_training(*args, **kwargs):
        raise AssertionError("a cached model was trained again")

    monkeypatch.setattr(toys, "train_induction_model", no_training)
    monkeypatch.setattr(toys, "train_char_model", no_training)
    b = toys.cached_induction_model(ind_spec)
    m2, _ = toys.cached_char_model(text, char_spec)
    assert "trained once in" not in capsys.readouterr().out
    for x, y in ((a, b), (m, m2)):
        for k, v in x.state_dict().items():
            assert torch.equal(v, y.state_dict()[k])
    # another setting or another text is another model
    with pytest.raises(AssertionError, match="trained again"):
        toys.cached_induction_model(dataclasses.replace(ind_spec, seed=2))
    with pytest.raises(AssertionError, match="trained again"):
        toys.cached_char_model(text + "!", char_spec)


def test_two_processes_training_the_same_model_at_once_leave_one_copy(tmp_path) -> None:
    """Two fresh processes build the same cached model at the same moment: both load it, one folder stays."""
    import os
    import subprocess
    import sys

    code = ("from course_lib import toys; import tests_spec; "
            "m = toys.cached_induction_model(tests_spec.SPEC, verbose=False); print(m.source)")
    (tmp_path / "tests_spec.py").write_text(
        "from course_lib import toys\n"
        "from course_lib.model import GPTConfig\n"
        "SPEC = toys.InductionSpec(steps=40, model=GPTConfig(vocab_size=64, n_positions=16, n_layer=2, n_head=4,"
        " n_embd=16), period=8, batch_size=4, record_every=10)\n",
        encoding="utf-8")
    env = {**os.environ, "COURSE_DATA_DIR": str(tmp_path / "data"),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    sources = {o[0].strip() for o in outs}
    assert len(sources) == 1
    assert [p.name for p in (tmp_path / "data" / "demo_model").iterdir()] == [Path(sources.pop()).name]
