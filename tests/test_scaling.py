"""course_lib.scaling: precision per GPU, TF32, torch.compile fallback, fused AdamW, FLOPs and MFU.

No GPU is needed: GPU facts (compute capability, device names) are simulated where a
code path depends on them, and the GPU-only paths themselves skip without CUDA.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from course_lib import runtime, scaling
from course_lib.model import GPT, LLAMA_SWITCHES, GPTConfig

SMALL = dict(vocab_size=101, n_positions=32, n_embd=48, n_layer=2, n_head=4)


@pytest.mark.parametrize("cap, expected", [((6, 1), torch.float16), ((7, 0), torch.float16),
                                           ((7, 5), torch.float16), ((8, 0), torch.bfloat16),
                                           ((8, 9), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_dtype_for_capability(cap: tuple[int, int], expected: torch.dtype) -> None:
    assert scaling.dtype_for_capability(*cap) == expected


def test_precision_on_the_cpu_is_fp32_without_a_scaler() -> None:
    p = scaling.choose_precision("cpu")
    assert p.dtype is None and not p.use_grad_scaler and p.name == "fp32"
    assert p.grad_scaler("cpu") is None


@pytest.mark.parametrize("cap, dtype, scaler", [((7, 5), torch.float16, True), ((8, 0), torch.bfloat16, False)])
def test_a_t4_never_gets_bf16(monkeypatch: pytest.MonkeyPatch, cap: tuple[int, int], dtype: torch.dtype,
                              scaler: bool) -> None:
    # the decision goes through runtime.autocast_dtype, which asks CUDA for the capability
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: cap)
    p = scaling.choose_precision("cuda")
    assert p.dtype == dtype and p.use_grad_scaler is scaler
    assert p.dtype == runtime.autocast_dtype("cuda") == scaling.dtype_for_capability(*cap)


def test_autocast_is_a_no_op_for_fp32() -> None:
    x = torch.randn(4, 4)
    with scaling.autocast("cpu", None):
        assert (x @ x).dtype == torch.float32
    with scaling.autocast("cpu", torch.bfloat16):
        assert (x @ x).dtype == torch.bfloat16


def test_tf32_is_left_alone_off_cuda() -> None:
    from course_lib import runtime

    before = runtime.tf32_enabled()  # the course's reader: torch 2.13 refuses the legacy getter once the
    assert scaling.enable_tf32("cpu") is False  # newer switches were set (another test may have set them)
    assert runtime.tf32_enabled() == before


@pytest.mark.cuda
def test_tf32_on_cuda() -> None:  # pragma: no cover - runs only with a GPU
    on = scaling.enable_tf32("cuda")
    assert on == (torch.cuda.get_device_capability()[0] >= 8)


def test_fused_adamw_equals_the_plain_one_where_available() -> None:
    if not scaling.fused_adamw_available("cpu"):
        pytest.skip("this PyTorch build has no fused AdamW on the CPU")
    torch.manual_seed(0)
    a = torch.randn(5, 7, requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    opt_a = torch.optim.AdamW([a], lr=1e-2, weight_decay=0.1)
    opt_b = torch.optim.AdamW([b], lr=1e-2, weight_decay=0.1, fused=True)
    for step in range(3):
        g = torch.randn(5, 7, generator=torch.Generator().manual_seed(step))
        a.grad, b.grad = g.clone(), g.clone()
        opt_a.step()
        opt_b.step()
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_non_embedding_params_counts_the_real_model() -> None:
    for cfg in (GPTConfig(**SMALL), GPTConfig.preset("tiny")):
        model = GPT(cfg)
        assert scaling.non_embedding_params(cfg) == model.num_parameters() - model.transformer.wpe.weight.numel()


def test_flops_per_token_matches_pytorchs_flop_counter() -> None:
    """6N + 12 L T C against the matmul FLOPs PyTorch counts in a real forward + backward."""
    cfg = GPTConfig(**SMALL)
    model = GPT(cfg)
    B, T = 2, cfg.n_positions
    x = torch.randint(0, cfg.vocab_size, (B, T))
    counter = FlopCounterMode(display=False)
    with counter:  # the explicit attention path, so the counter sees Q K^T and (weights) V as matmuls
        model(x, output_attentions=True).logits.float().sum().backward()
    counted = counter.get_total_flops() / (B * T)
    formula = scaling.flops_per_token(cfg, T)
    # N also holds biases and LayerNorm parameters (13 C per block, 2 C in ln_f): 6 FLOPs each
    # in the formula, but no matmul; apart from them the count is exact
    C, L = cfg.n_embd, cfg.n_layer
    assert counted == formula - 6 * (13 * C * L + 2 * C)
    assert scaling.flops_per_token(cfg) == formula  # the default length is n_positions


SWITCHED = [
    dict(LLAMA_SWITCHES, n_kv_head=2),  # a Llama: RMSNorm, RoPE, SwiGLU, no biases, untied head, GQA
    dict(LLAMA_SWITCHES, bias=True, tie_word_embeddings=True, n_inner=100),
    dict(mlp="swiglu"), dict(norm="rmsnorm"), dict(bias=False), dict(n_kv_head=1), dict(tie_word_embeddings=False),
]


@pytest.mark.parametrize("switches", SWITCHED, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_flops_count_the_notebook_11_switches(switches: dict) -> None:
    """N is every parameter but the lookups (the position table; the token embedding when the head is
    its own), counted on the real model; and 6N + 12 L T C against PyTorch's counter on a forward + backward."""
    cfg = GPTConfig(**{**SMALL, **switches})
    model = GPT(cfg)
    lookups = [model.transformer.wte.weight] * (not cfg.tie_word_embeddings)
    lookups += [model.transformer.wpe.weight] if "wpe" in model.transformer else []
    assert scaling.non_embedding_params(cfg) == model.num_parameters() - sum(w.numel() for w in lookups)
    B, T = 2, cfg.n_positions
    x = torch.randint(0, cfg.vocab_size, (B, T))
    counter = FlopCounterMode(display=False)
    with counter:
        model(x, output_attentions=True).logits.float().sum().backward()
    vectors = sum(p.numel() for p in model.parameters() if p.dim() == 1)  # biases and gains: no matmul
    assert counter.get_total_flops() / (B * T) == scaling.flops_per_token(cfg, T) - 6 * vectors


def test_gpt2_124m_flops_per_token() -> None:
    cfg = GPTConfig.preset("gpt2")
    assert scaling.non_embedding_params(cfg) == 123_653_376  # GPT2LMHeadModel's 124,439,808 minus wpe
    assert scaling.flops_per_token(cfg, 1024) == 6 * 123_653_376 + 12 * 12 * 1024 * 768


@pytest.mark.parametrize("name, key", [("NVIDIA H100 80GB HBM3", "H100"), ("NVIDIA H100 PCIe", "H100 PCIe"),
                                       ("NVIDIA H200", "H200"), ("Tesla T4", "T4"), ("NVIDIA L4", "L4"),
                                       ("NVIDIA L40S", "L40S"), ("NVIDIA A100-SXM4-40GB", "A100"),
                                       ("NVIDIA GeForce GTX 1060", None)])
def test_gpu_names_find_their_peak(name: str, key: str | None) -> None:
    assert scaling.gpu_peak_name(name) == key


def test_peak_flops_and_mfu() -> None:
    assert scaling.peak_flops("cpu") is None  # no peak, no MFU on a CPU
    assert scaling.peak_flops("cuda", torch.bfloat16, device_name="NVIDIA H100 80GB HBM3") == 989e12
    assert scaling.peak_flops("cuda", torch.float16, device_name="Tesla T4") == 65e12
    assert scaling.peak_flops("cuda", torch.bfloat16, device_name="Tesla T4") is None  # a T4 has no bf16
    assert scaling.peak_flops("cuda", None, device_name="NVIDIA A100-SXM4-80GB") == 156e12
    assert scaling.mfu(10_000, 1e9, 1e14) == pytest.approx(0.1)
    assert scaling.mfu(10_000, 1e9, None) is None


# --------------------------------------------------------------------------- torch.compile

def _tiny_model() -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(**SMALL))


def test_compile_is_opt_in() -> None:
    model = _tiny_model()
    assert scaling.compile_model(model, enabled=False) is model


@pytest.mark.parametrize("platform", ["win32"])
def test_compile_is_skipped_on_windows(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture,
                                       platform: str) -> None:
    monkeypatch.setattr(scaling.sys, "platform", platform)
    model = _tiny_model()
    assert scaling.compile_model(model) is model
    out = capsys.readouterr().out
    assert "Windows" in out and out.count("\n") == 1


def test_compile_is_skipped_on_old_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (6, 1))
    reason = scaling.compile_unsupported_reason("cuda")
    assert reason is not None and "6.1" in reason and "7.0" in reason
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: (7, 5))
    assert scaling.compile_unsupported_reason("cuda") is None


def test_a_failing_compile_falls_back_to_the_eager_model(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(scaling, "compile_unsupported_reason", lambda device: None)
    model = _tiny_model()
    x = torch.randint(0, SMALL["vocab_size"], (2, 8))

    def broken_compile(m: torch.nn.Module, **kw: object) -> torch.nn.Module:
        class Exploding(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self._orig_mod = m

            def forward(self, *a: object, **k: object) -> None:
                m(*a, **k).logits.sum().backward()  # leaves gradients behind, then fails
                raise RuntimeError("backend compiler failed\nlong traceback line")

        return Exploding()

    monkeypatch.setattr(torch, "compile", broken_compile)
    got = scaling.compile_model(model, trial=lambda m: m(x))
    assert got is model and not scaling.is_compiled(got)
    assert all(p.grad is None for p in model.parameters())  # the trial's gradients were cleared
    out = capsys.readouterr().out
    assert "RuntimeError: backend compiler failed" in out and out.count("\n") == 1
    torch.testing.assert_close(got(x).logits, _tiny_model()(x).logits)  # and it still works


# --------------------------------------------------------------------------- the GPU benchmark, CPU mode

def test_bench_gpu_runs_its_cpu_mode(capsys: pytest.CaptureFixture) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_gpu.py"
    spec = importlib.util.spec_from_file_location("bench_gpu", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    r = bench.main(["--quick", "--steps", "1"])
    train = r["train"]
    # same weights, same batch: the course model and GPT2LMHeadModel start at the same loss
    assert train["course"]["first_loss"] == pytest.approx(train["transformers"]["first_loss"], rel=1e-5)
    assert r["generate"]["same_tokens"]  # greedy decoding agrees token for token
    assert train["course"]["mfu"] is None and r["peak_flops"] is None  # no peak known for a CPU
    assert "train tokens/s" in capsys.readouterr().out
