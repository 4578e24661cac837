"""The Llama-style switches of course_lib.model against transformers' LlamaForCausalLM.

RMSNorm, rotary position embeddings, SwiGLU, grouped-query attention, no biases and an
untied head, all switched on, make the course `GPT` a Llama. On the same weights it
must give LlamaForCausalLM's logits, loss, attentions and gradients, the same KV cache
and the same greedy ids; weights convert both ways (`from_hf`, `to_hf`,
`save_pretrained`). Tiny random configurations, odd ones on purpose, made on the spot.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest
import torch

from course_lib.errors import CourseInputError
from course_lib.generate import generate
from course_lib.model import GPT, LLAMA_SWITCHES, GPTConfig, count_parameters

transformers = pytest.importorskip("transformers")

CONFIGS = [
    # odd head count, one key/value head (multi-query), untied, rope_theta not the default, MLP width 50
    dict(vocab_size=37, n_positions=40, n_embd=30, n_layer=2, n_head=3, n_kv_head=1, rope_theta=500.0, n_inner=50),
    # tiny vocabulary, five heads without grouping, tied head, the default SwiGLU width (112)
    dict(vocab_size=11, n_positions=24, n_embd=40, n_layer=3, n_head=5, tie_word_embeddings=True,
         layer_norm_epsilon=1e-5),
    # 6 query heads sharing 2 key/value heads, biases on, odd theta
    dict(vocab_size=257, n_positions=33, n_embd=48, n_layer=2, n_head=6, n_kv_head=2, rope_theta=12345.6,
         n_inner=200, bias=True),
    # one head of size 8, MLP narrower than the model
    dict(vocab_size=101, n_positions=64, n_embd=8, n_layer=1, n_head=1, n_inner=7, rope_theta=1e6),
]
IDS = [f"V{c['vocab_size']}-h{c['n_head']}-kv{c.get('n_kv_head', c['n_head'])}" for c in CONFIGS]


def config(cfg: dict) -> GPTConfig:
    return GPTConfig(**{**LLAMA_SWITCHES, **cfg})


def random_model(cfg: dict, seed: int = 0, scale: float | None = None) -> GPT:
    """A Llama-style GPT with random norm gains and biases (and, with `scale`, large weights)."""
    torch.manual_seed(seed)
    model = GPT(config(cfg))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            elif scale is not None:
                p.normal_(0, scale)  # large enough that greedy choices differ from step to step
    return model


def batch(cfg: dict, B: int = 2, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, cfg["vocab_size"], (B, cfg["n_positions"]), generator=g)


def hf_generate(hf: torch.nn.Module, prompt: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=max_new_tokens,
                           do_sample=False, pad_token_id=0, use_cache=True)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_logits_loss_attentions_and_gradients_equal_llamaforcausallm(cfg: dict) -> None:
    model = random_model(cfg).train()  # dropout is 0: train mode gives the same numbers
    hf = model.to_hf(attn_implementation="eager")
    assert type(hf).__name__ == "LlamaForCausalLM"
    x = batch(cfg)
    labels = x.clone()
    labels[0, :3] = -100

    ours = model(x, labels=labels, output_attentions=True)
    theirs = hf(input_ids=x, labels=labels, output_attentions=True, use_cache=False)
    torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.loss, theirs.loss, atol=1e-6, rtol=1e-6)
    for a, b in zip(ours.attentions, theirs.attentions, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    fast = model(x).logits  # the fused SDPA path
    torch.testing.assert_close(fast, theirs.logits, atol=1e-5, rtol=1e-5)

    ours.loss.backward()
    theirs.loss.backward()
    hf_grads = model._from_llama_names({n: p.grad for n, p in hf.named_parameters()})
    assert set(hf_grads) == {n for n, _ in model.named_parameters()}  # every weight maps, nothing left
    for name, p in model.named_parameters():
        err = (p.grad - hf_grads[name]).norm() / hf_grads[name].norm().clamp_min(1e-12)
        assert err < 1e-4, f"gradient of {name}: relative difference {err:.2e}"


def test_sdpa_attention_in_transformers_gives_the_same_logits() -> None:
    cfg = CONFIGS[2]
    model = random_model(cfg).eval()
    hf = model.to_hf(attn_implementation="sdpa").eval()
    x = batch(cfg)
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, hf(input_ids=x).logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cfg", CONFIGS, ids=IDS)
def test_greedy_generate_ids_equal_transformers(cfg: dict) -> None:
    model = random_model(cfg, scale=0.3).eval()
    hf = model.to_hf().eval()
    prompt = batch(cfg, seed=7)[:, :5]
    n = cfg["n_positions"] - 5
    ours = generate(model, prompt, n)  # with the KV cache (RoPE offsets, GQA's few heads)
    assert ours.shape == (2, cfg["n_positions"])
    assert len(set(ours[0, 5:].tolist())) > 1, "weights too small: greedy repeats one token"
    assert torch.equal(ours, hf_generate(hf, prompt, n))
    assert torch.equal(ours, generate(model, prompt, n, use_cache=False))
    assert torch.equal(ours, generate(hf, prompt, n)), "course generate on the transformers model"


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[2]], ids=[IDS[0], IDS[2]])
def test_kv_cache_holds_the_kv_heads_and_offsets_rotary_positions(cfg: dict) -> None:
    model = random_model(cfg).eval()
    x = batch(cfg)[:, :20]
    hs = cfg["n_embd"] // cfg["n_head"]
    kv_heads = cfg.get("n_kv_head", cfg["n_head"])
    with torch.no_grad():
        full = model(x).logits
        out = model(x[:, :5], use_cache=True)
        steps, past = [out.logits], out.past_key_values
        assert past[0][0].shape == (2, kv_heads, 5, hs)  # n_kv_head heads cached, not n_head
        out = model(x[:, 5:8], past_key_values=past, use_cache=True)  # a chunk on top of the cache
        steps.append(out.logits)
        past = out.past_key_values
        for t in range(8, 20):
            out = model(x[:, t : t + 1], past_key_values=past, use_cache=True)
            steps.append(out.logits)
            past = out.past_key_values
        torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
        hf_past = model.to_hf().eval()(input_ids=x, use_cache=True).past_key_values
    keys = hf_past.layers[0].keys if hasattr(hf_past, "layers") else hf_past[0][0]
    values = hf_past.layers[0].values if hasattr(hf_past, "layers") else hf_past[0][1]
    torch.testing.assert_close(past[0][0], keys, atol=1e-5, rtol=1e-5)  # rotated keys, as transformers caches
    torch.testing.assert_close(past[0][1], values, atol=1e-5, rtol=1e-5)


def test_from_hf_reads_a_llama_built_by_transformers_and_to_hf_gives_it_back() -> None:
    torch.manual_seed(3)
    kwargs = dict(vocab_size=53, hidden_size=36, intermediate_size=70, num_hidden_layers=2, num_attention_heads=6,
                  num_key_value_heads=3, max_position_embeddings=30, rms_norm_eps=1e-6, tie_word_embeddings=False,
                  attention_bias=False, mlp_bias=False, head_dim=6)
    try:
        hf_cfg = transformers.LlamaConfig(**kwargs, rope_parameters={"rope_type": "default", "rope_theta": 777.0})
    except TypeError:  # transformers 4.x
        hf_cfg = transformers.LlamaConfig(**kwargs, rope_theta=777.0)
    hf_cfg._attn_implementation = "eager"
    hf = transformers.LlamaForCausalLM(hf_cfg).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.2 * torch.randn_like(p))
    model = GPT.from_hf(hf).eval()
    assert model.config.rope_theta == 777.0 and model.config.n_kv_head == 3 and model.config.n_inner == 70
    x = torch.randint(0, 53, (3, 30))
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, hf(input_ids=x).logits, atol=1e-5, rtol=1e-5)
        back = model.to_hf().eval()
        assert type(back).__name__ == "LlamaForCausalLM"
        for k, v in hf.state_dict().items():
            torch.testing.assert_close(back.state_dict()[k], v, atol=0, rtol=0)
        torch.testing.assert_close(back(input_ids=x).logits, hf(input_ids=x).logits, atol=0, rtol=0)


def test_config_reads_rope_theta_from_either_transformers_layout() -> None:
    d = config(CONFIGS[0]).to_hf().to_dict()
    assert GPTConfig.from_hf(d) == config(CONFIGS[0])
    old = {k: v for k, v in d.items() if k != "rope_parameters"}  # transformers 4.x: top level + rope_scaling
    old.update(rope_theta=500.0, rope_scaling=None)
    assert GPTConfig.from_hf(old) == config(CONFIGS[0])
    with pytest.raises(CourseInputError, match="RoPE scaling"):
        GPTConfig.from_hf({**old, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}})
    with pytest.raises(CourseInputError, match="hidden_act"):
        GPTConfig.from_hf({**old, "hidden_act": "gelu"})


def test_save_pretrained_round_trips_through_transformers(tmp_path: Path) -> None:
    model = random_model(CONFIGS[2]).eval()
    model.save_pretrained(tmp_path / "m")
    hf = transformers.LlamaForCausalLM.from_pretrained(tmp_path / "m").eval()
    again = GPT.from_pretrained(tmp_path / "m").eval()
    assert again.config == model.config
    x = batch(CONFIGS[2])
    with torch.no_grad():
        torch.testing.assert_close(hf(input_ids=x).logits, model(x).logits, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(again(x).logits, model(x).logits, atol=0, rtol=0)


def test_parameter_counts_equal_transformers() -> None:
    for cfg in CONFIGS:
        model = random_model(cfg)
        hf = model.to_hf()
        assert model.num_parameters() == hf.num_parameters() == count_parameters(model.config)
        assert model.num_parameters(exclude_embeddings=True) == hf.num_parameters(exclude_embeddings=True)


# -- each switch alone, and the config ---------------------------------------------------
SWITCHES = [dict(norm="rmsnorm"), dict(position="rope"), dict(mlp="swiglu"), dict(n_kv_head=2),
            dict(bias=False), dict(tie_word_embeddings=False)]


@pytest.mark.parametrize("switch", SWITCHES, ids=[next(iter(s)) for s in SWITCHES])
def test_each_switch_alone_runs_caches_and_checkpoints(switch: dict) -> None:
    cfg = GPTConfig(vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=4, **switch)
    torch.manual_seed(0)
    model = GPT(cfg)
    x = torch.randint(0, 50, (2, 16))
    out = model(x, labels=x)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.gradient_checkpointing_enable()
    model(x, labels=x).loss.backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], atol=1e-6, rtol=1e-5)
    model.eval()
    with torch.no_grad():
        past = model(x[:, :9], use_cache=True).past_key_values
        step = model(x[:, 9:], past_key_values=past).logits
        torch.testing.assert_close(step, model(x).logits[:, 9:], atol=1e-5, rtol=1e-5)
    assert model.num_parameters() == count_parameters(cfg)


def test_switch_parameters_are_what_each_switch_removes_or_adds() -> None:
    base = GPTConfig(vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=4)
    n = count_parameters(base)
    C, L, V, T = 32, 2, 50, 16
    assert count_parameters(dataclasses.replace(base, norm="rmsnorm")) == n - (2 * L + 1) * C  # no LN biases
    assert count_parameters(dataclasses.replace(base, position="rope")) == n - T * C  # no wpe
    assert count_parameters(dataclasses.replace(base, tie_word_embeddings=False)) == n + V * C
    assert count_parameters(dataclasses.replace(base, n_kv_head=1)) == n - L * 2 * (C - 8) * (C + 1)
    assert count_parameters(dataclasses.replace(base, mlp="swiglu")) - n == L * (3 * 88 * C + 2 * 88 + C
                                                                                 - (8 * C * C + 4 * C + C))
    gpt2 = GPT(base)
    assert "transformer.wpe.weight" in gpt2.state_dict() and gpt2.lm_head.weight is gpt2.transformer.wte.weight


def test_default_config_is_gpt2_and_old_configs_still_load() -> None:
    old = dict(vocab_size=100, n_positions=16, n_embd=32, n_layer=2, n_head=4, dropout=0.0, layer_norm_epsilon=1e-5)
    cfg = GPTConfig.from_dict(old)  # a config.json written before the switches existed
    assert cfg == GPTConfig(**old) and cfg.hf_architecture == "GPT2LMHeadModel"
    assert cfg.kv_heads == 4 and cfg.mlp_width == 128
    llama = config(CONFIGS[0])
    assert GPTConfig.from_json(llama.to_json()) == llama
    assert GPTConfig.from_hf(llama.to_hf()) == llama


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(norm="batchnorm"), r"norm must be one of"),
        (dict(position="alibi"), r"position must be one of"),
        (dict(mlp="relu"), r"mlp must be one of"),
        (dict(n_kv_head=3), r"n_kv_head=3 must divide n_head=4"),
        (dict(n_kv_head=0), r"n_kv_head must be a positive integer"),
        (dict(n_inner=2.5), r"n_inner must be a positive integer"),
        (dict(bias="no"), r"bias must be True or False"),
        (dict(position="rope", n_embd=12, n_head=4), r"head size .* 3 must be even"),
        (dict(rope_theta=0.0), r"rope_theta must be > 0"),
    ],
)
def test_impossible_switches_raise(kwargs: dict, pattern: str) -> None:
    with pytest.raises(CourseInputError, match=pattern):
        GPTConfig(**{**dict(n_embd=32, n_head=4), **kwargs})


def test_a_mix_without_a_transformers_class_says_so() -> None:
    model = GPT(GPTConfig(vocab_size=20, n_positions=8, n_embd=16, n_layer=1, n_head=2, norm="rmsnorm"))
    with pytest.raises(CourseInputError, match="no transformers model has this mix"):
        model.to_hf()
    assert model(torch.zeros(1, 4, dtype=torch.long)).logits.shape == (1, 4, 20)  # the course model still runs


def test_missing_llama_weights_are_named() -> None:
    model = random_model(CONFIGS[0])
    sd = model.hf_state_dict()
    assert "model.layers.0.self_attn.k_proj.weight" in sd and sd["model.layers.0.self_attn.k_proj.weight"].shape == (
        10, 30)  # one key/value head of size 10
    del sd["model.layers.1.self_attn.v_proj.weight"]
    with pytest.raises(CourseInputError, match=r"missing transformer\.h\.1\.attn\.c_attn\.weight"):
        model.load_hf_state_dict(sd)


def test_gpt2_with_an_untied_head_and_another_mlp_width_still_converts_to_gpt2lmheadmodel() -> None:
    torch.manual_seed(4)
    model = GPT(GPTConfig(vocab_size=70, n_positions=20, n_embd=24, n_layer=2, n_head=3, n_inner=40,
                          tie_word_embeddings=False)).eval()
    hf = model.to_hf().eval()
    assert type(hf).__name__ == "GPT2LMHeadModel" and hf.lm_head.weight is not hf.transformer.wte.weight
    x = torch.randint(0, 70, (2, 20))
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, hf(input_ids=x).logits, atol=1e-5, rtol=1e-5)
        again = GPT.from_hf(hf).eval()
        assert again.config == model.config
        torch.testing.assert_close(again(x).logits, model(x).logits, atol=0, rtol=0)
