"""DistributedDataParallel on the CPU: 2 processes (gloo) equal 1 process with the same global batch.

The workers are started the way torchrun starts them (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT in the environment), through ``torch.multiprocessing.spawn``,
and go through `course_lib.distributed.init()`.

What is proved:
- a 2-process run with gradient accumulation ends with the same weights (and losses) as a
  1-process run with the same global batch;
- accumulation micro-steps do not all-reduce: DDP's communication hook runs once per
  optimizer step (and the counter does catch a loop that forgets `no_sync_unless`);
- the data position is global, so a run saved by 2 processes resumes in 1 process at the
  same place and ends equal to an uninterrupted run.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import DataLoader

from course_lib import distributed
from course_lib.data import TokenDataset
from course_lib.model import GPT, GPTConfig
from course_lib.runtime import seed_everything

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
    reason="this PyTorch build has no gloo backend",
)

CFG = dict(vocab_size=61, n_positions=16, n_embd=32, n_layer=2, n_head=2)
SEQ, MICRO, ACCUM, STEPS, SEED = 8, 2, 2, 3, 7  # per rank: 2 rows x 2 micro-steps; 3 optimizer steps


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dataset() -> TokenDataset:
    g = torch.Generator().manual_seed(123)
    ids = torch.randint(0, CFG["vocab_size"], (SEQ * 60 + 1,), generator=g)
    return TokenDataset(ids, SEQ)


def _state(model: torch.nn.Module, opt: torch.optim.Optimizer, samples: int, steps: int,
           losses: list[float]) -> dict:
    import copy

    return {"model": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "optim": copy.deepcopy(opt.state_dict()), "samples": samples, "steps": steps,
            "losses": list(losses)}


def count_gradient_syncs(ddp: torch.nn.Module) -> dict[str, int]:
    """Count DDP's gradient all-reduces on `ddp` (a DistributedDataParallel); returns the live counter.

    ``counter["syncs"]`` goes up once per synchronised backward pass (bucket 0),
    ``counter["buckets"]`` once per bucket all-reduced. The hook then does DDP's usual
    averaging all-reduce, so training is unchanged: it proves that accumulation micro-steps
    do not communicate.
    """
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    assert isinstance(ddp, torch.nn.parallel.DistributedDataParallel), type(ddp)
    counter = {"syncs": 0, "buckets": 0}

    def hook(state, bucket):  # noqa: ANN001 - DDP inspects real annotations; strings confuse it
        counter["buckets"] += 1
        if bucket.index() == 0:
            counter["syncs"] += 1
        return allreduce_hook(state, bucket)

    ddp.register_comm_hook(None, hook)
    return counter


def plain_train(micro: int, accum: int, steps: int, *, use_no_sync: bool = True,
                resume: dict | None = None, snapshot_after: int | None = None) -> dict:
    """A minimal DDP-aware loop built only from course_lib.distributed; runs in 1 or N processes."""
    seed_everything(SEED)
    model = GPT(GPTConfig(**CFG))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    start, done = 0, 0
    if resume is not None:
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optim"])
        start, done = resume["samples"], resume["steps"]
    ds = _dataset()
    sampler = distributed.ShardSampler(ds, shuffle=True, seed=SEED, start=start)  # one process too: the shared order
    loader = DataLoader(ds, batch_size=micro, sampler=sampler, drop_last=True)
    ddp = distributed.wrap_model(model, torch.device("cpu"))
    counter = count_gradient_syncs(ddp) if distributed.is_distributed() else None
    global_batch = micro * accum * distributed.world_size()
    batches = iter(loader)
    losses: list[float] = []
    snapshot = None
    for step in range(steps):
        total = torch.zeros(())
        for j in range(accum):
            x, _y = next(batches)
            sync = (j == accum - 1) or not use_no_sync
            with distributed.no_sync_unless(ddp, sync=sync):
                loss = ddp(x, labels=x).loss / accum
                loss.backward()
            total += loss.detach()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(distributed.all_reduce_mean(total).item())
        if snapshot_after == step + 1:  # what a checkpoint would hold, position in global samples
            snapshot = _state(model, opt, start + (step + 1) * global_batch, done + step + 1, losses)
    result = _state(model, opt, start + steps * global_batch, done + steps, losses)  # ddp shares model's weights
    result.update(syncs=None if counter is None else dict(counter), snapshot=snapshot)
    return result


def _worker(rank: int, world: int, port: int, out: str, job: str) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    assert distributed.init("gloo")
    try:
        assert distributed.world_size() == world and distributed.rank() == rank
        results: dict = {"plain": {
            "accum": plain_train(MICRO, ACCUM, STEPS, snapshot_after=2),
            "sync_every_micro_step": plain_train(MICRO, ACCUM, 1, use_no_sync=False),
        }}
        if job == "with_trainer":
            results["trainer"] = trainer_runs(Path(out))
        torch.save(results, Path(out) / f"rank{rank}.pt")
        distributed.barrier()
    finally:
        distributed.cleanup()


def _have_trainer() -> bool:
    try:
        import course_lib.train  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], Path]:
    """ONE spawn of 2 workers (process start-up is the slow part) running every job."""
    out = tmp_path_factory.mktemp("ddp")
    job = "with_trainer" if _have_trainer() else "plain"
    mp.spawn(_worker, args=(2, _free_port(), str(out), job), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)], out


def _assert_same_weights(a: dict, b: dict, atol: float = 2e-5) -> None:
    assert a.keys() == b.keys()
    worst = max((a[k].double() - b[k].double()).abs().max().item() for k in a)
    assert worst < atol, f"weights differ by up to {worst:.3g}"


@pytest.fixture(scope="module")
def two_process_plain(two_processes: tuple[list[dict], Path]) -> dict:
    return two_processes[0][0]["plain"]


def test_two_processes_equal_one_process_with_the_same_global_batch(two_process_plain: dict) -> None:
    ddp_run = two_process_plain["accum"]
    # one process, same global batch: 2 ranks x 2 micro-steps x 2 rows = 4 micro-steps x 2 rows
    single = plain_train(MICRO, ACCUM * 2, STEPS)
    assert single["syncs"] is None and ddp_run["samples"] == single["samples"] == STEPS * 8
    assert ddp_run["losses"] == pytest.approx(single["losses"], rel=1e-5, abs=1e-6)
    _assert_same_weights(ddp_run["model"], single["model"])
    # and training moved the weights, so the equality above is not trivial
    seed_everything(SEED)
    init = GPT(GPTConfig(**CFG)).state_dict()
    assert max((init[k] - single["model"][k]).abs().max().item() for k in init) > 1e-3


def test_accumulation_micro_steps_do_not_all_reduce(two_process_plain: dict) -> None:
    assert two_process_plain["accum"]["syncs"]["syncs"] == STEPS  # once per optimizer step
    # the counter does see a loop that syncs on every micro-step (same numbers, more traffic)
    careless = two_process_plain["sync_every_micro_step"]
    assert careless["syncs"]["syncs"] == ACCUM  # one optimizer step, ACCUM all-reduces


def test_resume_from_two_processes_into_one(two_process_plain: dict) -> None:
    saved = two_process_plain["accum"]["snapshot"]
    assert saved["samples"] == 2 * MICRO * ACCUM * 2  # global samples, not per-rank ones
    resumed = plain_train(MICRO, ACCUM * 2, STEPS - 2, resume=saved)
    uninterrupted = two_process_plain["accum"]
    assert resumed["steps"] == STEPS and resumed["samples"] == uninterrupted["samples"]
    assert resumed["losses"] == pytest.approx(uninterrupted["losses"][2:], rel=1e-5, abs=1e-6)
    _assert_same_weights(resumed["model"], uninterrupted["model"])


# --------------------------------------------------------------------------- the course Trainer

def _trainer_setup(out_dir: Path | None, max_steps: int = STEPS):
    from course_lib.train import TrainConfig, Trainer

    seed_everything(SEED)
    model = GPT(GPTConfig(**CFG))
    g = torch.Generator().manual_seed(321)
    ids = torch.randint(0, CFG["vocab_size"], (SEQ * 80 + 1,), generator=g)
    config = TrainConfig(batch_size=4, seq_len=SEQ, grad_accum_steps=2, max_steps=max_steps, lr=3e-3,
                         warmup_steps=2, min_lr=3e-4, eval_interval=0, eval_batches=None,
                         sample_prompt=None, out_dir=str(out_dir) if out_dir else None,
                         device="cpu", precision="fp32", seed=SEED, progress=False)
    return Trainer(model, ids[: SEQ * 60 + 1], ids[SEQ * 60:], config)


class _StopAt:
    """A Trainer callback that stops the run (as Ctrl-C would) after `step` steps."""

    def __init__(self, step: int) -> None:
        self.step = step

    def __getattr__(self, name: str):  # the Trainer calls the hooks it finds; others do nothing
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)

    def on_step_end(self, trainer, logs) -> None:  # noqa: ANN001
        if trainer.step >= self.step:
            trainer.should_stop = True


def trainer_runs(out: Path) -> dict:
    """In each worker: a full run and a run stopped after 2 steps, counting syncs and writes."""
    import course_lib.train.checkpoint as train_mod  # where the checkpoint folder is written

    counters: list[dict] = []
    writes = {"count": 0}
    original_wrap, original_atomic = distributed.wrap_model, train_mod.atomic_dir

    def wrap_and_count(model, device):  # noqa: ANN001
        wrapped = original_wrap(model, device)
        counters.append(count_gradient_syncs(wrapped))
        return wrapped

    def counting_atomic_dir(path):  # noqa: ANN001
        writes["count"] += 1
        return original_atomic(path)

    distributed.wrap_model, train_mod.atomic_dir = wrap_and_count, counting_atomic_dir
    try:
        full = _trainer_setup(out / "full")
        summary = full.fit()
        stopped = _trainer_setup(out / "stopped")
        stopped.callbacks.append(_StopAt(2))
        stopped.fit()
    finally:
        distributed.wrap_model, train_mod.atomic_dir = original_wrap, original_atomic
    return {"summary": summary, "losses": [h["loss"] for h in full.history],
            "syncs": [dict(c) for c in counters], "writes": writes["count"],
            "stopped_step": stopped.step}


@pytest.fixture(scope="module")
def two_process_trainer(two_processes: tuple[list[dict], Path]) -> tuple[list[dict], Path]:
    if not _have_trainer():
        pytest.skip("course_lib.train is not there yet")
    ranks, out = two_processes
    return [r["trainer"] for r in ranks], out


def test_trainer_on_two_processes_equals_one_process(two_process_trainer: tuple[list[dict], Path]) -> None:
    ranks, out = two_process_trainer
    single = _trainer_setup(None)
    single.fit()
    assert ranks[0]["losses"] == pytest.approx([h["loss"] for h in single.history], rel=1e-5, abs=1e-6)
    assert ranks[1]["losses"] == ranks[0]["losses"]  # every rank logs the same (all-reduced) loss
    saved = GPT.from_pretrained(out / "full")
    _assert_same_weights(saved.state_dict(), single.model.state_dict())


def test_trainer_syncs_once_per_step_and_only_rank_zero_writes(two_process_trainer: tuple[list[dict], Path]) -> None:
    ranks, _ = two_process_trainer
    for r in ranks:  # two runs per worker: 3 steps, then 2 steps; 2 micro-steps each
        assert [c["syncs"] for c in r["syncs"]] == [STEPS, 2]
    assert ranks[0]["writes"] == 2 and ranks[1]["writes"] == 0  # one final checkpoint per run, by rank 0


def test_trainer_resumes_a_two_process_checkpoint_in_one_process(two_process_trainer: tuple[list[dict], Path]) -> None:
    ranks, out = two_process_trainer
    assert ranks[0]["stopped_step"] == 2
    resumed = _trainer_setup(None).resume(out / "stopped")
    assert resumed.step == 2
    resumed.fit()
    assert [h["loss"] for h in resumed.history] == pytest.approx(ranks[0]["losses"], rel=1e-5, abs=1e-6)
    _assert_same_weights(resumed.model.state_dict(), GPT.from_pretrained(out / "full").state_dict())
