"""The training loop: `Trainer` and its `Callback` hooks.

`Trainer(model, train, val, cfg).fit()`: accumulation, clipping, mixed precision, evaluation,
samples, a tqdm bar, callbacks, checkpoints every N steps and on Ctrl-C;
`Trainer(...).resume(dir)` continues a run bitwise where it stopped (on the CPU).

Data order. Each epoch is a seeded permutation of the training windows
(``torch.randperm`` with seed ``config.seed + epoch``); micro-batch k of the epoch is rows
``perm[k*B:(k+1)*B]`` with B = ``config.batch_size``, the GLOBAL batch. Under ``torchrun``
rank r takes the r-th contiguous slice of B / world_size rows of that global batch, so a
run on N processes sees the same global batches as a run on one, and the position saved in
a checkpoint (micro-batches done) means the same thing for any world size.

Reference: P. Micikevicius et al., "Mixed Precision Training" (loss scaling), ICLR 2018.

Introduced in notebooks/06_training.ipynb.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .. import distributed as dist_utils
from .. import runtime
from ..data import TokenDataset
from ..errors import CourseInputError
from ..generate import DecodingSettings, context_length, generate
from ..protocols import TokenIds, Tokenizer
from . import checkpoint
from .config import TrainConfig, count_steps, training_flops_per_token
from .optim import cosine_schedule, make_optimizer

_CUDA_OOM = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError


class NonFiniteLossError(CourseInputError):
    """The loss became NaN or infinite; training stopped and no bad checkpoint was written."""


class OutOfMemoryError(CourseInputError):
    """The GPU ran out of memory; the message suggests a smaller batch or accumulation."""


def _as_dataset(data: Dataset | TokenIds | None, seq_len: int, name: str) -> Dataset | None:
    """A dataset as it is; raw token ids cut into `data.TokenDataset` windows of `seq_len`."""
    if data is None or isinstance(data, Dataset):
        return data
    try:
        return TokenDataset(data, seq_len)
    except CourseInputError as e:
        raise CourseInputError(f"{name}: {e}") from None


def _collate(dataset: Dataset, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    items = [dataset[int(i)] for i in rows]
    x = torch.stack([it[0] for it in items])  # (b, T)
    y = torch.stack([it[1] for it in items])  # (b, T)
    return x, y


def _seq_len_of(dataset: Dataset) -> int:
    return int(dataset[0][0].shape[-1])


class Callback:
    """Hooks the Trainer calls; override the ones you need. Set ``trainer.should_stop`` to stop.

    `logs` of ``on_step_end``: step, loss, lr, grad_norm, tokens_per_s, epoch.
    `logs` of ``on_evaluate``: step, val_loss, val_ppl, sample (text or None).
    """

    def on_train_begin(self, trainer: Trainer) -> None: ...

    def on_step_end(self, trainer: Trainer, logs: dict[str, Any]) -> None: ...

    def on_evaluate(self, trainer: Trainer, logs: dict[str, Any]) -> None: ...

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None: ...

    def on_train_end(self, trainer: Trainer) -> None: ...


class Trainer:
    """Train a causal language model: ``Trainer(model, train_data, val_data, config).fit()``.

    `model` maps ``input_ids`` (B, T) to an output with ``.logits`` (B, T, vocab): the
    course `GPT` or a `transformers.GPT2LMHeadModel`. `train_data`/`val_data` are datasets
    whose items are ``(x, y)`` pairs of (T,) id tensors (such as `data.TokenDataset`) or
    1-D token-id tensors/arrays (cut into windows of ``config.seq_len``). `tokenizer`
    (optional) is used for samples and saved into each checkpoint.

    After `fit`, ``history`` holds one dict per optimizer step and ``eval_history`` one per
    evaluation. Only the main process logs, shows the bar and writes checkpoints.
    """

    ESTIMATE_AFTER_STEPS = 3  # steps timed before the time left is printed (the 1st is not counted)

    def __init__(
        self,
        model: nn.Module,
        train_data: Dataset | TokenIds,
        val_data: Dataset | TokenIds | None = None,
        config: TrainConfig | None = None,
        *,
        tokenizer: Tokenizer | None = None,
        callbacks: Iterable[Callback] = (),
    ) -> None:
        self.config = config = config or TrainConfig()
        self.tokenizer = tokenizer
        self.callbacks = list(callbacks)
        self.train_data = _as_dataset(train_data, config.seq_len, "train_data")
        self.val_data = _as_dataset(val_data, config.seq_len, "val_data")
        if self.train_data is None:
            raise CourseInputError("train_data: give a dataset of (x, y) pairs or a 1-D tensor of token ids")
        self.seq_len = _seq_len_of(self.train_data)
        context = context_length(model)
        if context is not None and self.seq_len > context:
            raise CourseInputError(
                f"seq_len={self.seq_len} is longer than the model's context (n_positions={context}); "
                f"use --seq_len {context} or less, or a model with a longer context")
        self.world = dist_utils.world_size()
        if config.batch_size % self.world:
            raise CourseInputError(
                f"batch_size={config.batch_size} (the global batch) does not divide among "
                f"{self.world} processes; use a multiple of {self.world}")
        self.local_batch = config.batch_size // self.world
        n = len(self.train_data)
        self.steps_per_epoch_micro = n // config.batch_size  # micro-batches per epoch (last partial dropped)
        if self.steps_per_epoch_micro == 0:
            raise CourseInputError(
                f"the training data holds {n:,} sequences of {self.seq_len} tokens, fewer than one batch "
                f"(batch_size={config.batch_size}); use a smaller --batch_size (at most {n}) or a smaller "
                f"--seq_len, or more text")
        self.total_steps = count_steps(n, config.batch_size, config.grad_accum_steps, config.epochs,
                                       config.max_steps)

        self.device = runtime.pick_device(config.device)
        self.amp_dtype = self._amp_dtype()
        self.model = model.to(self.device)  # the plain model; self._train_model may be a DDP wrapper
        self._train_model = dist_utils.wrap_model(self.model, self.device)
        self.optimizer = make_optimizer(self.model, config, self.device)
        use_scaler = self.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler) if use_scaler else None

        self.step = 0  # optimizer steps done
        self.micro_batches_done = 0  # GLOBAL micro-batches consumed (world-size independent)
        self.history: list[dict[str, Any]] = []
        self.eval_history: list[dict[str, Any]] = []
        self.interrupted = False
        self.should_stop = False
        self.last_checkpoint: Path | None = None
        self.last_checkpoint_step: int | None = None
        self._perm_cache: tuple[int, torch.Tensor] | None = None
        self._stop_requested = False
        self._tok_per_s: float | None = None
        self._clock = time.perf_counter  # what times the first steps (a test gives a fake clock)
        self.measured: dict[str, float] = {}  # seconds_per_step and estimated_seconds, once measured

    # -- small helpers -----------------------------------------------------------------
    def _amp_dtype(self) -> torch.dtype | None:
        return runtime.precision_dtype(self.config.precision, self.device)

    def _autocast(self) -> contextlib.AbstractContextManager:
        return runtime.autocast(self.device, self.amp_dtype)

    @property
    def precision(self) -> str:
        """"fp32", "bf16" or "fp16" (with a GradScaler)."""
        return runtime.precision_name(self.amp_dtype)

    @property
    def tokens_per_step(self) -> int:
        """Tokens in one optimizer step, over all processes."""
        return self.config.batch_size * self.config.grad_accum_steps * self.seq_len

    def lr_at(self, step: int) -> float:
        """The learning rate of optimizer step `step` (0-based)."""
        c = self.config
        return cosine_schedule(step, max_lr=c.lr, min_lr=c.min_lr, warmup_steps=c.warmup_steps,
                               total_steps=self.total_steps)

    def _log(self, msg: str) -> None:
        if dist_utils.is_main_process():
            try:
                from tqdm.auto import tqdm

                tqdm.write(msg)
            except ImportError:  # pragma: no cover
                print(msg)

    def _callback(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    # -- the plan ----------------------------------------------------------------------
    def plan(self) -> dict[str, Any]:
        """What `fit` will do: parameters, tokens, steps, device, precision, a rough time."""
        n_params = sum(p.numel() for p in self.model.parameters())
        cfg = getattr(self.model, "config", None)
        n_layer = getattr(cfg, "n_layer", 0) or 0
        n_embd = getattr(cfg, "n_embd", 0) or 0
        flops_per_token = training_flops_per_token(n_params, n_layer, n_embd, self.seq_len)
        remaining = max(0, self.total_steps - self.step)
        tokens = remaining * self.tokens_per_step
        rate = {"cuda": 4e13, "mps": 3e12}.get(self.device.type, 2e10 * max(1, torch.get_num_threads()) / 2)
        return {
            "parameters": n_params,
            "train_sequences": len(self.train_data),
            "train_tokens": len(self.train_data) * self.seq_len,
            "val_sequences": len(self.val_data) if self.val_data is not None else 0,
            "seq_len": self.seq_len,
            "batch_size": self.config.batch_size,
            "grad_accum_steps": self.config.grad_accum_steps,
            "tokens_per_step": self.tokens_per_step,
            "steps_per_epoch": max(1, self.steps_per_epoch_micro // self.config.grad_accum_steps),
            "total_steps": self.total_steps,
            "start_step": self.step,
            "tokens_to_train": tokens,
            "device": f"{self.device} ({runtime.device_name(self.device)})",
            "processes": self.world,
            "precision": self.precision + (" + GradScaler" if self.scaler is not None else ""),
            "rough_seconds": flops_per_token * tokens / rate,
        }

    def describe_plan(self) -> str:
        """The plan as a few readable lines."""
        p = self.plan()
        secs = p["rough_seconds"]
        rough = f"{secs:.0f} s" if secs < 120 else f"{secs / 60:.0f} min" if secs < 7200 else f"{secs / 3600:.1f} h"
        lines = [
            f"model:     {p['parameters']:,} parameters",
            f"data:      {p['train_tokens']:,} training tokens ({p['train_sequences']:,} sequences of "
            f"{p['seq_len']}); {p['val_sequences']:,} validation sequences",
            f"steps:     {p['total_steps']:,} optimizer steps ({p['steps_per_epoch']:,} per epoch) of "
            f"{p['tokens_per_step']:,} tokens (batch {p['batch_size']} x accumulation "
            f"{p['grad_accum_steps']} x {p['seq_len']})"
            + (f", resuming at step {p['start_step']:,}" if p["start_step"] else ""),
            f"device:    {p['device']}, {p['processes']} process(es), precision {p['precision']}",
            f"time:      measured on the first {self.ESTIMATE_AFTER_STEPS} steps and printed then "
            f"(a FLOPs guess, often off by 2x: {rough})",
        ]
        return "\n".join(lines)

    def remaining_evaluations(self) -> int:
        """How many evaluations `fit` will still run (every eval_interval steps, and at the end)."""
        c = self.config
        if self.val_data is None or self.step >= self.total_steps:
            return 0
        every = c.eval_interval or 0
        regular = (self.total_steps // every - self.step // every) if every else 0
        return regular + (0 if every and self.total_steps % every == 0 else 1)

    def estimate_seconds(self, seconds_per_step: float) -> float:
        """Seconds left for the remaining steps and evaluations at a measured `seconds_per_step`.

        An evaluation batch is a forward pass only, about a third of a training micro-step
        (forward + backward + update), so evaluations are costed from the same measurement.
        """
        c = self.config
        remaining = max(0, self.total_steps - self.step)
        n_val = len(self.val_data) if self.val_data is not None else 0
        batches = math.ceil(n_val / (c.batch_size * self.world)) if n_val else 0
        if c.eval_batches is not None:
            batches = min(batches, c.eval_batches)
        per_eval = batches * seconds_per_step / (3 * c.grad_accum_steps)
        return remaining * seconds_per_step + self.remaining_evaluations() * per_eval

    def _report_measured_speed(self, step_seconds: list[float]) -> None:
        """After the first steps: the measured time per step and the time left, in one line."""
        per_step = sum(step_seconds[1:]) / len(step_seconds[1:])  # the first step carries one-off costs
        secs = self.estimate_seconds(per_step)
        left = f"{secs:.0f} s" if secs < 120 else f"{secs / 60:.0f} min" if secs < 7200 else f"{secs / 3600:.1f} h"
        self.measured = {"seconds_per_step": per_step, "estimated_seconds": secs}
        self._log(f"time:      {per_step:.2f} s per step, measured on steps {self.step - len(step_seconds) + 2:,}"
                  f"-{self.step:,} -> about {left} for the {self.total_steps - self.step:,} steps left and "
                  f"{self.remaining_evaluations():,} evaluation(s)"
                  f" (done around {time.strftime('%H:%M', time.localtime(time.time() + secs))})")

    # -- data order --------------------------------------------------------------------
    def _epoch_perm(self, epoch: int) -> torch.Tensor:
        if self._perm_cache is None or self._perm_cache[0] != epoch:
            g = torch.Generator().manual_seed(self.config.seed + epoch)
            self._perm_cache = (epoch, torch.randperm(len(self.train_data), generator=g))
        return self._perm_cache[1]

    def global_batch_rows(self, micro_batch: int) -> torch.Tensor:
        """Dataset rows of GLOBAL micro-batch number `micro_batch` (all ranks together)."""
        epoch, k = divmod(micro_batch, self.steps_per_epoch_micro)
        B = self.config.batch_size
        return self._epoch_perm(epoch)[k * B : (k + 1) * B]

    def _micro_batch(self, micro_batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.global_batch_rows(micro_batch)
        r = dist_utils.rank()
        mine = rows[r * self.local_batch : (r + 1) * self.local_batch]  # this rank's slice
        x, y = _collate(self.train_data, mine.tolist())
        non_blocking = self.device.type == "cuda"
        return x.to(self.device, non_blocking=non_blocking), y.to(self.device, non_blocking=non_blocking)

    # -- loss, evaluation, samples -----------------------------------------------------
    def _loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            logits = model(x).logits  # (b, T, vocab)
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1))

    @torch.no_grad()
    def evaluate(self, max_batches: int | None = ...) -> dict[str, float]:  # type: ignore[assignment]
        """Mean validation loss and perplexity over ``config.eval_batches`` batches (a fixed subset)."""
        if self.val_data is None:
            return {}
        if max_batches is ...:
            max_batches = self.config.eval_batches
        n = len(self.val_data)
        B = self.config.batch_size
        if max_batches is None or max_batches * B >= n:
            rows = torch.arange(n)
        else:  # the same seeded subset at every evaluation, so the curve is comparable
            g = torch.Generator().manual_seed(self.config.seed)
            rows = torch.randperm(n, generator=g)[: max_batches * B]
        mine = rows[dist_utils.rank() :: self.world]
        was_training = self.model.training
        self.model.eval()
        total = torch.zeros(2, dtype=torch.float64, device=self.device)  # (loss sum, count)
        try:
            for i in range(0, len(mine), self.local_batch):
                x, y = _collate(self.val_data, mine[i : i + self.local_batch].tolist())
                x, y = x.to(self.device), y.to(self.device)
                loss = self._loss(self.model, x, y)
                total[0] += loss.double() * x.size(0)
                total[1] += x.size(0)
        finally:
            self.model.train(was_training)
        total = dist_utils.all_reduce_mean(total)
        val_loss = float(total[0] / total[1]) if float(total[1]) > 0 else float("nan")
        return {"val_loss": val_loss, "val_ppl": math.exp(min(val_loss, 50.0))}

    @torch.no_grad()
    def sample(self, prompt: str | None = None, max_new_tokens: int | None = None,
               top_k: int | None = ..., temperature: float | None = None, seed: int | None = None) -> str | None:  # type: ignore[assignment]
        """A short continuation of `prompt`: `generate.generate` with top-k sampling and its own seed.

        `generate` samples with a private random generator, so sampling never changes the
        training's random numbers. ``top_k`` None or 1 is greedy. Returns None without a tokenizer.
        """
        tok = self.tokenizer
        if tok is None:
            return None
        c = self.config
        prompt = c.sample_prompt if prompt is None else prompt
        if prompt is None:
            return None
        max_new_tokens = c.sample_tokens if max_new_tokens is None else max_new_tokens
        top_k = c.sample_top_k if top_k is ... else top_k
        temperature = c.sample_temperature if temperature is None else temperature
        ids = tok.encode(prompt)
        ids = list(getattr(ids, "ids", ids)) or [0]
        greedy = top_k is None or top_k <= 1
        settings = DecodingSettings(do_sample=not greedy, top_k=None if greedy else top_k, temperature=temperature)
        was_training = self.model.training
        self.model.eval()
        try:
            with self._autocast():
                out = generate(self.model, ids, max_new_tokens, settings,
                               seed=c.seed if seed is None else seed)  # (1, T + new), with the KV cache
        finally:
            self.model.train(was_training)
        new = out[0, out.size(1) - max_new_tokens:].tolist()  # no eos: exactly max_new_tokens new ids
        return prompt + tok.decode(new)

    def _evaluate_and_report(self) -> None:
        logs: dict[str, Any] = {"step": self.step}
        logs.update(self.evaluate())
        logs["sample"] = self.sample() if dist_utils.is_main_process() else None
        self.eval_history.append(logs)
        if "val_loss" in logs:
            msg = f"step {self.step:,}: val loss {logs['val_loss']:.4f}, perplexity {logs['val_ppl']:.2f}"
            if self.history:
                msg = msg.replace(": val", f": train loss {self.history[-1]['loss']:.4f}, val")
            self._log(msg)
        if logs["sample"] is not None:
            self._log(f"  sample: {logs['sample']!r}")
        self._callback("on_evaluate", logs)

    # -- checkpoints -------------------------------------------------------------------
    def save_checkpoint(
        self, path: str | os.PathLike | None = None, *, _rng: dict[str, Any] | None = None
    ) -> Path | None:
        """Write model + tokenizer + train_state/ atomically to `path` (default ``config.out_dir``).

        Only the main process writes; all processes wait for it.
        """
        target = Path(path) if path is not None else (Path(self.config.out_dir) if self.config.out_dir else None)
        if target is None:
            raise CourseInputError("save_checkpoint: give a path or set TrainConfig.out_dir")
        if dist_utils.is_main_process():
            run = {
                "step": self.step,
                "micro_batches_done": self.micro_batches_done,
                "epoch": self.micro_batches_done / self.steps_per_epoch_micro,
                "total_steps": self.total_steps,
                "seq_len": self.seq_len,
                "world_size": self.world,
                "train_config": self.config.to_dict(),
            }
            checkpoint.write_checkpoint(
                target, model=self.model, tokenizer=self.tokenizer, optimizer=self.optimizer,
                scaler=self.scaler, rng=_rng or checkpoint.rng_state(), run=run,
                history=self.history, eval_history=self.eval_history)
            self._callback("on_checkpoint", target)
        dist_utils.barrier()
        self.last_checkpoint, self.last_checkpoint_step = target, self.step
        return target

    def resume(self, path: str | os.PathLike) -> Trainer:
        """Load a checkpoint written by `save_checkpoint` and continue from it; returns self.

        The model's shape and the settings that shape the run must match the checkpoint
        (the differences are named otherwise); `epochs`, `max_steps`, intervals, the
        output folder and the device may change.
        """
        d = Path(path)
        state = checkpoint.read_train_state(d)
        checkpoint.check_resumable(d, state, self.model, self.config.to_dict(), self.seq_len)
        checkpoint.load_weights(d, self.model, self.device)
        blob = checkpoint.load_optimizer_state(d, self.optimizer, self.scaler)
        self.step = int(state["step"])
        self.micro_batches_done = int(state["micro_batches_done"])
        self.history = list(state.get("history", []))
        self.eval_history = list(state.get("eval_history", []))
        checkpoint.set_rng_state({"torch": blob["torch_rng"], "cuda": blob.get("cuda_rng") or [],
                                  "python": state.get("python_rng")})
        self.last_checkpoint, self.last_checkpoint_step = d, self.step
        return self

    # -- Ctrl-C ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _catch_sigint(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum: int, frame: FrameType | None) -> None:
            if self._stop_requested:  # a second Ctrl-C: stop at once
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            self._stop_requested = True
            self._log("Ctrl-C: finishing this step, then saving a checkpoint (press again to stop at once)")

        signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    # -- the loop ----------------------------------------------------------------------
    def _train_step(self) -> dict[str, Any]:
        c = self.config
        model = self._train_model
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        for micro in range(c.grad_accum_steps):
            x, y = self._micro_batch(self.micro_batches_done + micro)
            last = micro == c.grad_accum_steps - 1
            with dist_utils.no_sync_unless(model, sync=last):
                loss = self._loss(model, x, y) / c.grad_accum_steps
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                else:
                    loss.backward()
            loss_sum += loss.detach()
        # one reduction for the logged loss and for a Ctrl-C seen by any rank
        flags = torch.stack([loss_sum.float(), torch.tensor(float(self._stop_requested), device=self.device)])
        flags = dist_utils.all_reduce_mean(flags)
        loss_value = float(flags[0])
        if float(flags[1]) > 0:
            self._stop_requested = True
        if not math.isfinite(loss_value):
            self.optimizer.zero_grad(set_to_none=True)
            return {"loss": loss_value, "finite": False}
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        grad_norm = float("nan")
        if c.grad_clip > 0:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), c.grad_clip))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        dt = time.perf_counter() - t0
        self.step += 1
        self.micro_batches_done += c.grad_accum_steps
        tps = self.tokens_per_step / max(dt, 1e-9)
        return {"step": self.step, "loss": loss_value, "lr": lr, "grad_norm": grad_norm,
                "tokens_per_s": tps, "epoch": self.micro_batches_done / self.steps_per_epoch_micro,
                "finite": True}

    def _oom_error(self) -> OutOfMemoryError:
        c = self.config
        half = max(1, c.batch_size // 2)
        return OutOfMemoryError(
            f"the GPU ran out of memory at step {self.step + 1} with batch_size={c.batch_size} "
            f"({self.local_batch} per device) x seq_len={self.seq_len}. Try --batch_size {half} with "
            f"--grad_accum {c.grad_accum_steps * 2} (the same tokens per step), a shorter --seq_len, or a "
            "smaller model." + self._checkpoint_note())

    def _checkpoint_note(self) -> str:
        if self.last_checkpoint is not None:
            return (f" The last good checkpoint (step {self.last_checkpoint_step:,}) is in "
                    f"{self.last_checkpoint}, untouched; continue it with --resume / Trainer.resume().")
        return " No checkpoint had been written yet (set checkpoint_interval / --save_every to keep one)."

    def fit(self) -> dict[str, Any]:
        """Train until ``total_steps``, Ctrl-C, or ``should_stop``; returns a summary dict.

        Ctrl-C finishes the current step, writes a checkpoint (when ``out_dir`` is set)
        and returns with ``interrupted`` True; a second Ctrl-C stops at once (the
        checkpoint then holds the last finished step). A NaN/inf loss raises
        `NonFiniteLossError` before the bad step is applied or saved; CUDA out of memory
        raises `OutOfMemoryError` with suggestions.
        """
        c = self.config
        main = dist_utils.is_main_process()
        self._stop_requested = False
        self.interrupted = False
        self.should_stop = False
        bar = None
        if c.progress and main and self.step < self.total_steps:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, desc="training", unit="step",
                       dynamic_ncols=True)
        self.model.train()
        self._callback("on_train_begin")
        status = "done"
        rng_before_step = None
        step_seconds: list[float] = []  # the run's first steps, timed for the estimate (once per Trainer)
        try:
            with self._catch_sigint():
                while self.step < self.total_steps:
                    rng_before_step = checkpoint.rng_state()
                    t0 = self._clock()
                    try:
                        logs = self._train_step()
                    except _CUDA_OOM:
                        raise self._oom_error() from None
                    seconds = self._clock() - t0
                    if not logs.pop("finite"):
                        raise NonFiniteLossError(
                            f"the loss became {logs['loss']} at step {self.step + 1}; training stopped and this "
                            "step was not applied or saved." + self._checkpoint_note()
                            + " Try a lower --lr, more warm-up, or bf16/fp32 instead of fp16.")
                    rng_before_step = None
                    if not self.measured and len(step_seconds) < self.ESTIMATE_AFTER_STEPS:
                        step_seconds.append(seconds)
                        if len(step_seconds) == self.ESTIMATE_AFTER_STEPS and self.step < self.total_steps:
                            self._report_measured_speed(step_seconds)
                    self.history.append(logs)
                    self._tok_per_s = logs["tokens_per_s"] if self._tok_per_s is None else (
                        0.9 * self._tok_per_s + 0.1 * logs["tokens_per_s"])
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{logs['loss']:.4f}", lr=f"{logs['lr']:.2e}",
                                        tok_s=f"{self._tok_per_s:,.0f}")
                    self._callback("on_step_end", logs)
                    done = self.step >= self.total_steps
                    if c.eval_interval and self.step % c.eval_interval == 0 or done:
                        self._evaluate_and_report()
                    if self._stop_requested or self.should_stop:
                        status = "interrupted" if self._stop_requested else "stopped"
                        break
                    if c.out_dir and c.checkpoint_interval and self.step % c.checkpoint_interval == 0 and not done:
                        self.save_checkpoint()
        except KeyboardInterrupt:
            status = "interrupted"
        finally:
            if bar is not None:
                bar.close()
        self.interrupted = status == "interrupted"
        if c.out_dir:
            # after a mid-step interrupt, save the RNG state of the last finished step
            self.save_checkpoint(_rng=rng_before_step)
            if self.interrupted:
                self._log(f"interrupted at step {self.step:,}: checkpoint saved to {c.out_dir}; "
                          "continue with Trainer.resume() or `course train ... --resume`")
        elif self.interrupted:
            self._log(f"interrupted at step {self.step:,} (no out_dir, so no checkpoint was written)")
        self._callback("on_train_end")
        last_eval = self.eval_history[-1] if self.eval_history else {}
        return {
            "status": status,
            "step": self.step,
            "total_steps": self.total_steps,
            "train_loss": self.history[-1]["loss"] if self.history else None,
            "val_loss": last_eval.get("val_loss"),
            "val_ppl": last_eval.get("val_ppl"),
            "checkpoint": str(self.last_checkpoint) if self.last_checkpoint else None,
        }
