"""course_lib.train: schedule and optimizer against torch, the loop against a hand-written one and
against transformers' GPT2LMHeadModel trained the same way, exact resume, Ctrl-C, and clear errors."""

from __future__ import annotations

import copy
import json
import os
import signal
import sys

import pytest
import torch
import torch.nn.functional as F

from course_lib import distributed as dist_utils
from course_lib import scaling
from course_lib.errors import CourseInputError
from course_lib.model import GPT, GPTConfig
from course_lib.train import (
    Callback,
    NonFiniteLossError,
    OutOfMemoryError,
    TrainConfig,
    Trainer,
    cosine_schedule,
    decay_parameter_names,
    make_optimizer,
    read_train_state,
)

V, CTX = 40, 16


def tiny_model(seed: int = 0, dropout: float = 0.0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=V, n_positions=CTX, n_embd=16, n_layer=2, n_head=2, dropout=dropout))


def token_ids(n: int = 1200, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # a learnable pattern with noise: next token is mostly (t + 1) mod V
    ids = torch.zeros(n, dtype=torch.long)
    for i in range(1, n):
        ids[i] = (ids[i - 1] + 1) % V if torch.rand((), generator=g) < 0.8 else torch.randint(V, (), generator=g)
    return ids


IDS = token_ids()
TRAIN, VAL = IDS[:1000], IDS[1000:]


def cfg(**kw) -> TrainConfig:
    base = dict(batch_size=4, seq_len=8, max_steps=6, lr=3e-3, min_lr=3e-4, warmup_steps=2,
                eval_interval=0, eval_batches=2, progress=False, sample_prompt=None, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def losses(trainer: Trainer) -> list[float]:
    return [h["loss"] for h in trainer.history]


# --------------------------------------------------------------------------- config, schedule, optimizer

def test_config_round_trips_through_json(tmp_path):
    c = cfg(out_dir=str(tmp_path), max_steps=None, epochs=2.5)
    assert TrainConfig.from_json(c.to_json()) == c
    c.to_json(tmp_path / "c.json")
    assert TrainConfig.from_json(tmp_path / "c.json") == c
    with pytest.raises(CourseInputError, match="unknown fields.*'bogus'"):
        TrainConfig.from_dict({**c.to_dict(), "bogus": 1})
    for bad in (dict(batch_size=0), dict(lr=-1.0), dict(min_lr=1.0, lr=0.1), dict(precision="fp8"),
                dict(beta2=1.0), dict(epochs=0)):
        with pytest.raises(CourseInputError):
            cfg(**bad)


def test_cosine_schedule_equals_torch_linear_then_cosine_schedulers():
    max_lr, min_lr, warmup, total = 1e-3, 1e-4, 5, 40
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=max_lr)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup, eta_min=min_lr),
    ], milestones=[warmup])
    for step in range(total + 1):
        ours = cosine_schedule(step, max_lr=max_lr, min_lr=min_lr, warmup_steps=warmup, total_steps=total)
        assert ours == pytest.approx(opt.param_groups[0]["lr"], rel=1e-6, abs=1e-12), step
        opt.step()
        sched.step()
    assert cosine_schedule(10**6, max_lr=max_lr, min_lr=min_lr, warmup_steps=warmup, total_steps=total) == min_lr


def test_weight_decay_only_on_2d_weights_same_names_as_hf():
    model = tiny_model()
    decay, no_decay = decay_parameter_names(model)
    hf_decay, hf_no_decay = decay_parameter_names(model.to_hf())
    assert set(decay) == set(hf_decay) and set(no_decay) == set(hf_no_decay)
    assert all(n.endswith(".weight") for n in decay) and "transformer.wte.weight" in decay
    assert all(n.endswith(".bias") or ".ln_" in n for n in no_decay)
    opt = make_optimizer(model, cfg(weight_decay=0.1))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    # the fused kernel wherever this PyTorch build has one for the device (the CPU included)
    assert bool(opt.defaults["fused"]) == scaling.fused_adamw_available("cpu")


# --------------------------------------------------------------------------- the loop

def _reference_run(model, config, trainer):
    """The same steps written out by hand: AdamW groups, schedule, accumulation, clipping."""
    decay, no_decay = decay_parameter_names(model)
    named = dict(model.named_parameters())
    opt = torch.optim.AdamW([{"params": [named[n] for n in decay], "weight_decay": config.weight_decay},
                             {"params": [named[n] for n in no_decay], "weight_decay": 0.0}],
                            lr=config.lr, betas=(config.beta1, config.beta2), eps=config.eps,
                            fused=trainer.optimizer.defaults["fused"])  # the same kernel, so the same rounding
    out = []
    mb = 0
    for step in range(config.max_steps):
        for g in opt.param_groups:
            g["lr"] = cosine_schedule(step, max_lr=config.lr, min_lr=config.min_lr,
                                      warmup_steps=config.warmup_steps, total_steps=config.max_steps)
        total = 0.0
        for _ in range(config.grad_accum_steps):
            rows = trainer.global_batch_rows(mb)
            mb += 1
            x = torch.stack([trainer.train_data[int(i)][0] for i in rows])
            y = torch.stack([trainer.train_data[int(i)][1] for i in rows])
            logits = model(x).logits
            loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1)) / config.grad_accum_steps
            loss.backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        opt.zero_grad()
        out.append(total)
    return out


def test_trainer_step_equals_a_hand_written_loop():
    config = cfg(grad_accum_steps=2, grad_clip=0.5)
    model = tiny_model()
    ref_model = copy.deepcopy(model)
    trainer = Trainer(model, TRAIN, VAL, config)
    trainer.fit()
    expected = _reference_run(ref_model, config, trainer)
    assert losses(trainer) == pytest.approx(expected, rel=1e-5)
    for (n, a), b in zip(model.named_parameters(), ref_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=n)


def test_course_gpt_and_hf_gpt2_train_the_same_way_through_the_trainer():
    course = tiny_model()
    hf = course.to_hf(attn_implementation="eager")
    a = Trainer(course, TRAIN, VAL, cfg(max_steps=5))
    b = Trainer(hf, TRAIN, VAL, cfg(max_steps=5))
    a.fit()
    b.fit()
    assert losses(a) == pytest.approx(losses(b), rel=1e-4)
    assert a.evaluate()["val_loss"] == pytest.approx(b.evaluate()["val_loss"], rel=1e-4)
    assert losses(a)[-1] < losses(a)[0]


def test_evaluate_is_the_mean_loss_over_the_validation_windows():
    model = tiny_model()
    trainer = Trainer(model, TRAIN, VAL, cfg(eval_batches=None))
    got = trainer.evaluate()
    xs = torch.stack([trainer.val_data[i][0] for i in range(len(trainer.val_data))])
    ys = torch.stack([trainer.val_data[i][1] for i in range(len(trainer.val_data))])
    with torch.no_grad():
        ref = F.cross_entropy(model(xs).logits.reshape(-1, V), ys.reshape(-1)).item()
    assert got["val_loss"] == pytest.approx(ref, rel=1e-6)
    assert got["val_ppl"] == pytest.approx(torch.exp(torch.tensor(ref)).item(), rel=1e-6)


class _Chars:
    def encode(self, s):
        return [ord(c) % V for c in s]

    def decode(self, ids):
        return "".join(chr(97 + i % 26) for i in ids)


def test_callbacks_history_and_samples_do_not_touch_the_training_rng():
    seen = {"begin": 0, "step": 0, "eval": 0, "end": 0}

    class Count(Callback):
        def on_train_begin(self, t):
            seen["begin"] += 1

        def on_step_end(self, t, logs):
            seen["step"] += 1
            assert set(logs) >= {"step", "loss", "lr", "grad_norm", "tokens_per_s", "epoch"}

        def on_evaluate(self, t, logs):
            seen["eval"] += 1
            assert logs["sample"].startswith("ab") and logs["val_loss"] > 0

        def on_train_end(self, t):
            seen["end"] += 1

    config = cfg(eval_interval=3, sample_prompt="ab", sample_tokens=5)
    t = Trainer(tiny_model(dropout=0.2), TRAIN, VAL, config, tokenizer=_Chars(), callbacks=[Count()])
    t.fit()
    assert seen == {"begin": 1, "step": 6, "eval": 2, "end": 1}
    assert [h["step"] for h in t.history] == list(range(1, 7))
    plain = Trainer(tiny_model(dropout=0.2), TRAIN, VAL, config.replace(sample_prompt=None))
    plain.fit()
    assert losses(plain) == losses(t)  # sampling used its own generator


def test_rank_slices_make_up_the_global_batch(monkeypatch):
    t = Trainer(tiny_model(), TRAIN, VAL, cfg())
    rows = t.global_batch_rows(3)
    monkeypatch.setattr(dist_utils, "world_size", lambda: 2)
    parts = []
    for r in (0, 1):
        monkeypatch.setattr(dist_utils, "rank", lambda r=r: r)
        t2 = Trainer(tiny_model(), TRAIN, VAL, cfg())
        assert t2.local_batch == 2
        x, _ = t2._micro_batch(3)
        parts.append(x)
    x_all = torch.stack([t.train_data[int(i)][0] for i in rows])
    assert torch.equal(torch.cat(parts), x_all)


# --------------------------------------------------------------------------- checkpoints and resume

class _SigintAt(Callback):
    """Press Ctrl-C (a real SIGINT to this process) right after step k."""

    def __init__(self, k):
        self.k = k

    def on_step_end(self, trainer, logs):
        if logs["step"] == self.k:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_then_resume_equals_the_uninterrupted_run_bitwise(tmp_path):
    config = cfg(max_steps=8, grad_accum_steps=2, eval_interval=4, checkpoint_interval=3)
    full = Trainer(tiny_model(dropout=0.1), TRAIN, VAL, config.replace(out_dir=str(tmp_path / "full")))
    full.fit()

    out = tmp_path / "run"
    first = Trainer(tiny_model(dropout=0.1), TRAIN, VAL, config.replace(out_dir=str(out)), callbacks=[_SigintAt(5)])
    summary = first.fit()
    assert summary["status"] == "interrupted" and first.interrupted and summary["step"] == 5
    assert read_train_state(out)["step"] == 5
    # the checkpoint loads as a model, in the course and in transformers
    from transformers import GPT2LMHeadModel

    x = VAL[:8][None]
    loaded = GPT.from_pretrained(out).eval()
    torch.testing.assert_close(loaded(x).logits, first.model.eval()(x).logits)
    hf = GPT2LMHeadModel.from_pretrained(out).eval()
    torch.testing.assert_close(hf(x).logits, loaded(x).logits, rtol=1e-4, atol=1e-5)

    torch.manual_seed(999)  # a different RNG state and fresh weights: resume must restore both
    second = Trainer(tiny_model(seed=5, dropout=0.1), TRAIN, VAL, config.replace(out_dir=str(out))).resume(out)
    assert second.step == 5
    second.fit()
    assert losses(second) == losses(full)  # bitwise on the CPU
    for a, b in zip(second.model.parameters(), full.model.parameters()):
        assert torch.equal(a, b)
    assert [e["val_loss"] for e in second.eval_history] == [e["val_loss"] for e in full.eval_history]


def test_keyboard_interrupt_mid_step_keeps_the_last_finished_step(tmp_path):
    config = cfg(max_steps=6, grad_accum_steps=2)
    full = Trainer(tiny_model(dropout=0.1), TRAIN, VAL, config)
    full.fit()

    model = tiny_model(dropout=0.1)
    calls = {"n": 0}

    def boom(module, args):
        calls["n"] += 1
        if calls["n"] == 8:  # the second micro-step of step 4
            raise KeyboardInterrupt

    handle = model.register_forward_pre_hook(boom)
    out = tmp_path / "mid"
    first = Trainer(model, TRAIN, VAL, config.replace(out_dir=str(out)))
    assert first.fit()["status"] == "interrupted"
    handle.remove()
    assert read_train_state(out)["step"] == 3
    second = Trainer(tiny_model(seed=3, dropout=0.1), TRAIN, VAL, config).resume(out)
    second.fit()
    assert losses(second) == losses(full)


def test_resume_refuses_another_config_naming_the_differences(tmp_path):
    out = tmp_path / "ck"
    Trainer(tiny_model(), TRAIN, VAL, cfg(max_steps=2, out_dir=str(out))).fit()
    with pytest.raises(CourseInputError, match=r"lr: checkpoint 0\.003, now 0\.001") as e:
        Trainer(tiny_model(), TRAIN, VAL, cfg(lr=1e-3)).resume(out)
    assert "batch_size" not in str(e.value)
    other = GPT(GPTConfig(vocab_size=V, n_positions=CTX, n_embd=32, n_layer=2, n_head=2))
    with pytest.raises(CourseInputError, match="n_embd: checkpoint 16, now 32"):
        Trainer(other, TRAIN, VAL, cfg()).resume(out)
    # allowed: more steps
    t = Trainer(tiny_model(), TRAIN, VAL, cfg(max_steps=3)).resume(out)
    assert t.step == 2 and t.fit()["step"] == 3
    with pytest.raises(CourseInputError, match="no train_state"):
        Trainer(tiny_model(), TRAIN, VAL, cfg()).resume(tmp_path)


def test_hf_model_checkpoint_round_trip(tmp_path):
    hf = tiny_model().to_hf(attn_implementation="eager")
    out = tmp_path / "hf"
    t = Trainer(hf, TRAIN, VAL, cfg(max_steps=3, out_dir=str(out)))
    t.fit()
    hf2 = tiny_model(seed=7).to_hf(attn_implementation="eager")
    t2 = Trainer(hf2, TRAIN, VAL, cfg(max_steps=3)).resume(out)
    for (n, a), b in zip(hf.named_parameters(), hf2.parameters()):
        assert torch.equal(a, b), n
    assert t2.step == 3 and (out / "train_state" / "state.pt").is_file()
    info = json.loads((out / "train_state" / "trainer.json").read_text(encoding="utf-8"))
    assert info["model"]["class"] == "GPT2LMHeadModel" and info["micro_batches_done"] == 3


# --------------------------------------------------------------------------- clear errors

def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model = tiny_model()
    calls = {"n": 0}

    def poison(module, args, output):
        calls["n"] += 1
        if calls["n"] == 4:  # step 4
            return output * float("nan")
        return None

    model.lm_head.register_forward_hook(poison)
    out = tmp_path / "nan"
    t = Trainer(model, TRAIN, VAL, cfg(max_steps=8, checkpoint_interval=2, out_dir=str(out)))
    with pytest.raises(NonFiniteLossError, match=r"nan at step 4.*last good checkpoint \(step 2\)") as e:
        t.fit()
    assert str(out) in str(e.value)
    assert read_train_state(out)["step"] == 2
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the bad step was not applied


def test_cuda_out_of_memory_suggests_a_smaller_batch_or_accumulation():
    model = tiny_model()

    def oom(module, args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    model.register_forward_pre_hook(oom)
    t = Trainer(model, TRAIN, VAL, cfg(batch_size=4))
    with pytest.raises(OutOfMemoryError, match=r"--batch_size 2 with --grad_accum 2"):
        t.fit()


def test_bad_data_and_context_are_refused_clearly():
    with pytest.raises(CourseInputError, match=r"fewer than one batch.*--batch_size \(at most 3\)"):
        Trainer(tiny_model(), IDS[:30], None, cfg(batch_size=4, seq_len=8))
    with pytest.raises(CourseInputError, match=r"seq_len=32 is longer than the model's context \(n_positions=16\)"):
        Trainer(tiny_model(), IDS, None, cfg(seq_len=32))
    with pytest.raises(CourseInputError, match="fp16 needs a CUDA GPU"):
        Trainer(tiny_model(), IDS, None, cfg(precision="fp16"))


def test_plan_describes_the_run():
    t = Trainer(tiny_model(), TRAIN, VAL, cfg(max_steps=None, epochs=2, grad_accum_steps=2))
    p = t.plan()
    assert p["tokens_per_step"] == 4 * 2 * 8 and p["total_steps"] == t.total_steps == 2 * (124 // 4) // 2 + 0
    assert p["parameters"] == sum(q.numel() for q in t.model.parameters())
    text = t.describe_plan()
    for word in ("parameters", "steps", "cpu", "fp32", "measured on the first 3 steps"):
        assert word in text


def test_time_left_is_measured_on_the_first_steps_not_guessed():
    t = Trainer(tiny_model(), TRAIN, VAL, cfg(max_steps=10, eval_interval=4, eval_batches=2))
    # evaluations after steps 4 and 8 and at the end; each is 2 forward batches, a third of a step each
    assert t.remaining_evaluations() == 3
    assert t.estimate_seconds(3.0) == pytest.approx(10 * 3.0 + 3 * 2 * 3.0 / 3)
    # a fake clock: the first step takes 5 s (one-off costs, not counted), the next two 2 s each
    readings = iter([0.0, 5.0, 100.0, 102.0, 200.0, 202.0])
    t._clock = lambda: next(readings, 1000.0)
    said: list[str] = []
    t._log = said.append
    t.fit()
    lines = [m for m in said if m.startswith("time:")]
    assert len(lines) == 1, said
    assert t.measured["seconds_per_step"] == pytest.approx(2.0)
    # after step 3: 7 steps and 3 evaluations left = 7 x 2 + 3 x (2 batches x 2 s / 3)
    assert t.measured["estimated_seconds"] == pytest.approx(7 * 2.0 + 3 * 2 * 2.0 / 3)
    assert "2.00 s per step, measured on steps 2-3 -> about 18 s for the 7 steps left and 3 evaluation(s)" in lines[0]
    # once per run: fit() called again (after a stop, or with more steps) does not print it again
    t.total_steps += 5
    said.clear()
    t.fit()
    assert t.step == 15 and not [m for m in said if m.startswith("time:")], said
    # no estimate for a run too short to measure
    short = Trainer(tiny_model(), TRAIN, VAL, cfg(max_steps=3))
    said.clear()
    short._log = said.append
    short.fit()
    assert not short.measured and not [m for m in said if m.startswith("time:")]


# --------------------------------------------------------------------------- the live loss plot

def test_live_loss_plot_redraws_headless_and_smooths():
    from course_lib.viz.training import LiveLossPlot, loss_figure, smooth

    assert smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])  # bias-corrected: no warm-up dip
    assert smooth([1.0, 3.0], beta=0.5) == pytest.approx([1.0, (0.25 * 1 + 0.5 * 3) / 0.75])
    plot = LiveLossPlot(every=2)
    t = Trainer(tiny_model(), TRAIN, VAL, cfg(max_steps=4, eval_interval=2), callbacks=[plot])
    t.fit()
    assert plot.redraws == 2 + 2 + 1  # every 2 steps, at each evaluation, at the end
    ax = plot.figure.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["train (per step)", "train (smoothed)", "validation"]
    assert list(ax.get_lines()[0].get_ydata()) == losses(t)
    assert len(loss_figure([], [], show_lr=False).axes) == 1


# --------------------------------------------------------------------------- benchmarks keep working

def _load_benchmark(name):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass in the script looks its module up there
    spec.loader.exec_module(module)
    return module


def test_bench_train_quick_runs(capsys):
    assert _load_benchmark("bench_train").main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "course / hf-default" in out and "tokens/s" in out


STAND_IN_NANOGPT = {
    # a stand-in for a karpathy/nanoGPT clone, with its interface: flags in, "iter"/"val loss" lines and
    # out_dir/ckpt.pt out, the model in model.py (the benchmark loads the checkpoint with it)
    "model.py": """
from dataclasses import dataclass
import torch
import torch.nn.functional as F

@dataclass
class GPTConfig:
    vocab_size: int = 65

class GPT(torch.nn.Module):
    def __init__(self, config):
        super().__init__()
        self.wte = torch.nn.Embedding(config.vocab_size, config.vocab_size)

    def forward(self, idx, targets=None):
        logits = self.wte(idx)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss
""",
    "configurator.py": "",
    "config/train_shakespeare_char.py": "",
    "train.py": """
import os, pickle, sys, torch
from model import GPT, GPTConfig
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
torch.manual_seed(1337)
meta = pickle.load(open("data/shakespeare_char/meta.pkl", "rb"))
model = GPT(GPTConfig(vocab_size=meta["vocab_size"]))
for i in range(int(args["max_iters"]) + 1):
    print(f"iter {i}: loss 4.0000, time 10.00ms, mfu 1.00%")
print("step 10: train loss 4.1000, val loss 4.2000")
os.makedirs(args["out_dir"], exist_ok=True)
torch.save({"model": model.state_dict(), "model_args": {"vocab_size": meta["vocab_size"]}},
           os.path.join(args["out_dir"], "ckpt.pt"))
""",
}


def test_bench_shakespeare_char_runs_both_tools_and_reports_ratios(tmp_path, capsys):
    clone = tmp_path / "nanoGPT"
    for name, text in STAND_IN_NANOGPT.items():
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        (clone / name).write_text(text, encoding="utf-8")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("To be, or not to be, that is the question.\n" * 400, encoding="utf-8")
    bench = _load_benchmark("bench_shakespeare_char")
    rows = tmp_path / "rows.json"
    assert bench.main(["--quick", "--data", str(corpus), "--nanogpt", str(clone), "--seeds", "2",
                       "--json", str(rows)]) == 0
    out = capsys.readouterr().out
    assert "nanoGPT wall / course wall" in out and "mean whole-split val loss" in out
    import json

    got = json.loads(rows.read_text())
    assert [r["tool"] for r in got] == ["course", "nanoGPT", "nanoGPT", "course"]  # A B, then B A
    assert all(r["val_full"] > 0 and r["wall_s"] > 0 for r in got)
    assert {r["val20"] for r in got if r["tool"] == "nanoGPT"} == {4.2}
    # the whole-split loss is computed on each checkpoint, and the seed shift reached train.py
    nano = [r["val_full"] for r in got if r["tool"] == "nanoGPT"]
    assert len(set(nano)) == 2


def test_bench_shakespeare_char_without_nanogpt_reports_the_course_alone(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("All the world's a stage.\n" * 500, encoding="utf-8")
    assert _load_benchmark("bench_shakespeare_char").main(["--quick", "--data", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "no --nanogpt path: the course alone" in out and "course Trainer, recipe `course`" in out


def test_bench_shakespeare_char_refuses_a_folder_without_nanogpt(tmp_path):
    with pytest.raises(SystemExit):
        _load_benchmark("bench_shakespeare_char").main(["--quick", "--nanogpt", str(tmp_path)])


def test_bench_trainer_overhead_quick_runs(capsys):
    assert _load_benchmark("bench_trainer_overhead").main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "| tiny |" in out and "overhead" in out
