"""course_lib.ladder: which rungs of notebook 10's speed-up ladder run on a T4, an A100, a CPU, and why not.

No GPU is needed: the choices are plain logic on a device kind and a compute capability.
"""

from __future__ import annotations

import pytest
import torch

from course_lib import ladder
from course_lib.errors import CourseInputError


def _by_name(rungs: list[ladder.Rung]) -> dict[str, ladder.Rung]:
    return {r.name: r for r in rungs}


def test_the_rungs_come_in_order_and_each_keeps_the_ones_before() -> None:
    rungs = ladder.plan_ladder("cuda", (8, 0))
    assert tuple(r.name for r in rungs) == ladder.RUNGS
    assert all(r.runs for r in rungs)
    last = rungs[-1]
    assert last.tf32 and last.amp_dtype == torch.bfloat16 and not last.grad_scaler
    assert last.flash and last.compile and last.fused and last.vocab_multiple == 64
    first = rungs[0]
    assert not (first.tf32 or first.amp_dtype or first.flash or first.compile or first.fused or first.vocab_multiple)
    switches = ("tf32", "amp_dtype", "flash", "compile", "fused", "vocab_multiple")
    for before, after in zip(rungs, rungs[1:]):  # exactly one switch more per rung
        changed = [s for s in switches if getattr(before, s) != getattr(after, s)]
        assert len(changed) == 1, (after.name, changed)


def test_a_t4_gets_fp16_with_a_grad_scaler_and_no_tf32() -> None:
    r = _by_name(ladder.plan_ladder("cuda", (7, 5)))
    assert not r["TF32"].runs and "7.5" in r["TF32"].skipped and "Ampere" in r["TF32"].skipped
    auto = r["autocast"]
    assert auto.runs and auto.amp_dtype == torch.float16 and auto.grad_scaler
    assert "GradScaler" in auto.label
    assert r["padded vocab"].amp_dtype == torch.float16 and r["padded vocab"].grad_scaler
    assert not r["padded vocab"].tf32
    assert "memory-efficient" in r["flash attention"].note


@pytest.mark.parametrize("cap", [(8, 0), (8, 6), (8, 9), (9, 0), (10, 0), (12, 0)])
def test_ampere_and_newer_get_tf32_and_bf16_without_a_scaler(cap: tuple[int, int]) -> None:
    r = _by_name(ladder.plan_ladder("cuda", cap))
    assert r["TF32"].runs and r["TF32"].tf32
    assert r["autocast"].amp_dtype == torch.bfloat16 and not r["autocast"].grad_scaler


def test_a_cpu_skips_tf32_and_autocast_and_says_why() -> None:
    rungs = ladder.plan_ladder("cpu", compile_reason="too slow to compile here")
    r = _by_name(rungs)
    assert [x.name for x in rungs if not x.runs] == ["TF32", "autocast", "torch.compile"]
    assert "CPU" in r["TF32"].skipped and "fp32" in r["autocast"].skipped
    assert r["torch.compile"].skipped == "too slow to compile here"
    # a skipped rung measures the same thing as the rung before it
    assert r["autocast"].amp_dtype is None and not r["autocast"].tf32
    assert r["fused AdamW"].fused and r["padded vocab"].vocab_multiple == 64
    assert not r["padded vocab"].compile and r["padded vocab"].flash


def test_mps_gets_bf16_autocast_and_no_tf32() -> None:
    r = _by_name(ladder.plan_ladder("mps"))
    assert not r["TF32"].runs and r["autocast"].amp_dtype == torch.bfloat16


def test_compile_is_an_opt_in_and_a_failure_replans_without_it() -> None:
    off = _by_name(ladder.plan_ladder("cuda", (9, 0), compile=False))
    assert not off["torch.compile"].runs and "COMPILE = True" in off["torch.compile"].skipped
    assert not off["padded vocab"].compile
    failed = _by_name(ladder.plan_ladder("cuda", (9, 0), compile_reason="failed here: BackendCompilerFailed"))
    assert failed["torch.compile"].skipped.startswith("failed here")
    assert failed["fused AdamW"].runs and not failed["fused AdamW"].compile


def test_without_fused_adamw_that_rung_is_skipped() -> None:
    r = _by_name(ladder.plan_ladder("cuda", (7, 0), fused_available=False))
    assert not r["fused AdamW"].runs and not r["padded vocab"].fused


def test_plan_refuses_an_unknown_device_or_a_gpu_without_capability() -> None:
    with pytest.raises(CourseInputError, match="device_type"):
        ladder.plan_ladder("tpu")
    with pytest.raises(CourseInputError, match="compute capability"):
        ladder.plan_ladder("cuda")


@pytest.mark.parametrize("vocab, multiple, expected", [(50257, 64, 50304), (50304, 64, 50304), (50257, 128, 50304),
                                                       (65, 64, 128), (1, 8, 8), (50257, 1, 50257),
                                                       (32000, 256, 32000), (50257, 1024, 51200)])
def test_padded_vocab(vocab: int, multiple: int, expected: int) -> None:
    assert ladder.padded_vocab(vocab, multiple) == expected


@pytest.mark.parametrize("bad", [(0, 64), (50257, 0), (50257.0, 64), (True, 64), (50257, -8)])
def test_padded_vocab_refuses_bad_sizes(bad: tuple) -> None:
    with pytest.raises(CourseInputError, match="padded_vocab"):
        ladder.padded_vocab(*bad)


def test_the_padded_rung_names_its_size() -> None:
    assert ladder.plan_ladder("cpu")[-1].label == "vocab 50,304"
    assert ladder.plan_ladder("cpu", vocab_multiple=128)[-1].label == "vocab 50,304"
    assert ladder.plan_ladder("cpu", vocab_multiple=1024)[-1].label == "vocab 51,200"


@pytest.mark.parametrize("gib, batch", [(None, 1), (8, 1), (15, 2), (24, 4), (40, 8), (80, 16), (141, 16)])
def test_batch_for_memory(gib: float | None, batch: int) -> None:
    assert ladder.batch_for_memory(None if gib is None else int(gib * 2**30)) == batch
