"""GPT-2: configuration, transformer block and the full language model.

Follows "Language Models are Unsupervised Multitask Learners" (Radford et al., 2019)
and OpenAI's reference code (https://github.com/openai/gpt-2/blob/master/src/model.py):
pre-LayerNorm blocks, a GELU (tanh form) MLP four times wider than the residual
stream, learned position embeddings, a final LayerNorm, and an output head that shares
its weights with the token embedding.

Parameter names follow GPT-2's (`transformer.wte`, `transformer.h.{i}.attn.c_attn`,
`mlp.c_fc`, `transformer.ln_f`, `lm_head`), so a state dict reads side by side with
Hugging Face's; converting is a transpose of the four Conv1D weights (Hugging Face
stores them as (in, out), `nn.Linear` as (out, in)).

Switches, not copies: GPT-2's descendants changed a few parts, and each is a
`GPTConfig` field whose default keeps GPT-2 exactly: `norm="rmsnorm"` (RMSNorm),
`position="rope"` (rotary position embeddings), `mlp="swiglu"` (SwiGLU MLP),
`n_kv_head < n_head` (grouped-query attention), `bias=False` and
`tie_word_embeddings=False` (an untied head). All of them together
(`LLAMA_SWITCHES`) make a Llama-style model that `from_hf`/`to_hf` convert to and
from `transformers`' `LlamaForCausalLM`.

Introduced in notebooks/04_transformer_block.ipynb and notebooks/05_gpt2_model.ipynb;
the switches in notebooks/11_beyond_gpt2.ipynb.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .attention import CausalSelfAttention, KVCache, RoPE, padded_causal_mask, rope_cos_sin
from .errors import CourseInputError
from .io import JsonConfig, ignored_state_key, usual_permissions

# The four weights Hugging Face stores as Conv1D (in, out); we store them as Linear (out, in).
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")

# Llama-style models: `LlamaForCausalLM`'s names for ours, spelled out. Inside a block
# (transformer.h.{i}. -> model.layers.{i}.); attn.c_attn is q_proj, k_proj, v_proj stacked.
LLAMA_BLOCK_NAMES = {
    "ln_1.weight": "input_layernorm.weight",
    "attn.c_proj.weight": "self_attn.o_proj.weight",
    "attn.c_proj.bias": "self_attn.o_proj.bias",
    "ln_2.weight": "post_attention_layernorm.weight",
    "mlp.c_gate.weight": "mlp.gate_proj.weight",
    "mlp.c_gate.bias": "mlp.gate_proj.bias",
    "mlp.c_fc.weight": "mlp.up_proj.weight",
    "mlp.c_fc.bias": "mlp.up_proj.bias",
    "mlp.c_proj.weight": "mlp.down_proj.weight",
    "mlp.c_proj.bias": "mlp.down_proj.bias",
}
LLAMA_QKV = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")  # the three parts of attn.c_attn
LLAMA_TOP_NAMES = {
    "transformer.wte.weight": "model.embed_tokens.weight",
    "transformer.ln_f.weight": "model.norm.weight",
    "lm_head.weight": "lm_head.weight",
}

PRESETS: dict[str, dict[str, int]] = {
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768),  # 124M
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024),  # 350M
    "gpt2-large": dict(n_layer=36, n_head=20, n_embd=1280),  # 774M
    "gpt2-xl": dict(n_layer=48, n_head=25, n_embd=1600),  # 1558M
    "tiny": dict(n_layer=4, n_head=4, n_embd=128, n_positions=256),  # CPU-sized
}

# The switches that together make a Llama-style model (add n_kv_head < n_head for GQA).
LLAMA_SWITCHES: dict[str, Any] = dict(
    norm="rmsnorm", position="rope", mlp="swiglu", bias=False, tie_word_embeddings=False
)
_CHOICES = {"norm": ("layernorm", "rmsnorm"), "position": ("learned", "rope"), "mlp": ("gelu", "swiglu")}


@dataclass
class GPTConfig(JsonConfig):
    """The shape of a GPT-2 model. Round-trips through JSON; impossible values raise."""

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    dropout: float = 0.0
    layer_norm_epsilon: float = 1e-5
    # -- switches from GPT-2's descendants; the defaults are GPT-2 (notebooks/11_beyond_gpt2.ipynb)
    norm: str = "layernorm"  # or "rmsnorm"
    position: str = "learned"  # or "rope": no position table, q and k are rotated
    mlp: str = "gelu"  # or "swiglu"
    n_kv_head: int | None = None  # key/value heads; None = n_head, fewer = grouped-query attention
    bias: bool = True  # False: no biases in any Linear or LayerNorm
    tie_word_embeddings: bool = True  # False: lm_head has its own weights
    n_inner: int | None = None  # MLP width; None = 4 n_embd (gelu) or 8/3 n_embd rounded up to 8 (swiglu)
    rope_theta: float = 10000.0  # the base of the rotary angles (position="rope")

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise CourseInputError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise CourseInputError(
                f"GPTConfig: n_embd={self.n_embd} is not divisible by n_head={self.n_head}; "
                f"pick n_head among {[h for h in range(1, self.n_embd + 1) if self.n_embd % h == 0][:12]}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise CourseInputError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout!r}")
        if self.layer_norm_epsilon <= 0:
            raise CourseInputError(f"GPTConfig.layer_norm_epsilon must be > 0, got {self.layer_norm_epsilon!r}")
        self._check_switches()

    def _check_switches(self) -> None:
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise CourseInputError(f"GPTConfig.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("n_kv_head", "n_inner"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise CourseInputError(f"GPTConfig.{name} must be a positive integer or None, got {value!r}")
        if self.n_head % self.kv_heads != 0:
            raise CourseInputError(
                f"GPTConfig: n_kv_head={self.n_kv_head} must divide n_head={self.n_head}; "
                f"pick n_kv_head among {[h for h in range(1, self.n_head + 1) if self.n_head % h == 0]}"
            )
        for name in ("bias", "tie_word_embeddings"):
            if not isinstance(getattr(self, name), bool):
                raise CourseInputError(f"GPTConfig.{name} must be True or False, got {getattr(self, name)!r}")
        if self.position == "rope" and self.head_size % 2:
            raise CourseInputError(
                f"GPTConfig: rotary embeddings pair up channels, so the head size n_embd // n_head = "
                f"{self.head_size} must be even"
            )
        if not self.rope_theta > 0:
            raise CourseInputError(f"GPTConfig.rope_theta must be > 0, got {self.rope_theta!r}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @property
    def kv_heads(self) -> int:
        """The number of key/value heads (n_head unless grouped-query attention)."""
        return self.n_head if self.n_kv_head is None else self.n_kv_head

    @property
    def mlp_width(self) -> int:
        """The MLP's hidden width: n_inner, else 4 n_embd (GELU) or the SwiGLU width with as many weights."""
        if self.n_inner is not None:
            return self.n_inner
        if self.mlp == "swiglu":  # three matrices of 8/3 C instead of two of 4 C (Llama rounds to 256)
            width = -(-8 * self.n_embd // 3)  # ceil(8 C / 3)
            return 8 * -(-width // 8)  # rounded up to a multiple of 8
        return 4 * self.n_embd

    @property
    def hf_architecture(self) -> str | None:
        """The `transformers` class this configuration converts to, or None for a course-only mix."""
        if self.norm == "layernorm" and self.position == "learned" and self.mlp == "gelu":
            return "GPT2LMHeadModel" if self.bias and self.kv_heads == self.n_head else None
        if self.norm == "rmsnorm" and self.position == "rope" and self.mlp == "swiglu":
            return "LlamaForCausalLM"
        return None

    def _require_hf(self) -> str:
        arch = self.hf_architecture
        if arch is None:
            switches = {k: getattr(self, k) for k in ("norm", "position", "mlp", "bias", "n_kv_head")}
            raise CourseInputError(
                f"no transformers model has this mix of switches {switches}: GPT-2 needs them all off, "
                "Llama needs norm='rmsnorm', position='rope' and mlp='swiglu' together"
            )
        return arch

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GPTConfig:
        """One of "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "tiny", with overrides."""
        if name not in PRESETS:
            raise CourseInputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


    # -- Hugging Face GPT2Config -------------------------------------------------------
    def to_hf(self, **kwargs: Any) -> Any:
        """The equivalent `transformers.GPT2Config` or `LlamaConfig` (extra kwargs are passed through)."""
        if self._require_hf() == "LlamaForCausalLM":
            return self._to_hf_llama(**kwargs)
        from transformers import GPT2Config

        # GPT-2's <|endoftext|> is id 50256; a smaller course vocabulary names its own.
        special = 50256 if self.vocab_size > 50256 else None
        kwargs.setdefault("bos_token_id", special)
        kwargs.setdefault("eos_token_id", special)
        return GPT2Config(
            vocab_size=self.vocab_size, n_positions=self.n_positions, n_embd=self.n_embd,
            n_layer=self.n_layer, n_head=self.n_head, resid_pdrop=self.dropout,
            embd_pdrop=self.dropout, attn_pdrop=self.dropout,
            layer_norm_epsilon=self.layer_norm_epsilon, activation_function="gelu_new",
            tie_word_embeddings=self.tie_word_embeddings, n_inner=self.n_inner, **kwargs,
        )

    @classmethod
    def from_hf(cls, hf_config: Any) -> GPTConfig:
        """Read a `transformers.GPT2Config` or `LlamaConfig` (or its dict), refusing what they are not."""
        d = hf_config if isinstance(hf_config, dict) else hf_config.to_dict()
        if d.get("model_type") == "llama":
            return cls._from_hf_llama(d)
        act = d.get("activation_function", "gelu_new")
        if act not in ("gelu_new", "gelu_pytorch_tanh"):
            raise CourseInputError(f"unsupported activation_function {act!r}: the course GPT uses gelu_new")
        drops = {d.get(k, 0.0) for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
        return cls(
            vocab_size=d["vocab_size"], n_positions=d["n_positions"], n_embd=d["n_embd"],
            n_layer=d["n_layer"], n_head=d["n_head"], dropout=float(max(drops)),
            layer_norm_epsilon=float(d.get("layer_norm_epsilon", 1e-5)),
            tie_word_embeddings=bool(d.get("tie_word_embeddings", True)), n_inner=d.get("n_inner"),
        )

    # -- Hugging Face LlamaConfig (the Llama-style switches) ---------------------------
    def _to_hf_llama(self, **kwargs: Any) -> Any:
        from transformers import LlamaConfig

        for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
            kwargs.setdefault(key, None)  # Llama's defaults (1, 2) name tokens of its own vocabulary
        return LlamaConfig(
            vocab_size=self.vocab_size, hidden_size=self.n_embd, intermediate_size=self.mlp_width,
            num_hidden_layers=self.n_layer, num_attention_heads=self.n_head,
            num_key_value_heads=self.kv_heads, head_dim=self.head_size, hidden_act="silu",
            max_position_embeddings=self.n_positions, rms_norm_eps=self.layer_norm_epsilon,
            rope_theta=self.rope_theta,  # transformers 5 moves it into rope_parameters
            attention_bias=self.bias, mlp_bias=self.bias, attention_dropout=self.dropout,
            tie_word_embeddings=self.tie_word_embeddings, **kwargs,
        )

    @classmethod
    def _from_hf_llama(cls, d: dict[str, Any]) -> GPTConfig:
        if d.get("hidden_act", "silu") != "silu":
            raise CourseInputError(f"unsupported hidden_act {d['hidden_act']!r}: the course SwiGLU uses silu")
        # transformers 5 keeps rope_theta in rope_parameters; 4.x at the top level, scaling in rope_scaling
        rope = d.get("rope_parameters") or d.get("rope_scaling") or {}
        if rope.get("rope_type", rope.get("type", "default")) != "default":
            raise CourseInputError(f"unsupported RoPE scaling {rope!r}: the course uses plain (default) RoPE")
        theta = rope.get("rope_theta", d.get("rope_theta", 10000.0))
        heads = d["num_attention_heads"]
        head_dim = d.get("head_dim") or d["hidden_size"] // heads
        if head_dim * heads != d["hidden_size"]:
            raise CourseInputError(
                f"head_dim={head_dim} x num_attention_heads={heads} != hidden_size={d['hidden_size']}: "
                "the course model needs head_dim = hidden_size // num_attention_heads"
            )
        if bool(d.get("attention_bias", False)) != bool(d.get("mlp_bias", False)):
            raise CourseInputError("attention_bias and mlp_bias differ: the course has one bias switch for both")
        kv = d.get("num_key_value_heads") or heads
        switches = {**LLAMA_SWITCHES, "bias": bool(d.get("attention_bias", False)),
                    "tie_word_embeddings": bool(d.get("tie_word_embeddings", False))}
        return cls(
            vocab_size=d["vocab_size"], n_positions=d["max_position_embeddings"], n_embd=d["hidden_size"],
            n_layer=d["num_hidden_layers"], n_head=heads, dropout=float(d.get("attention_dropout", 0.0) or 0.0),
            layer_norm_epsilon=float(d.get("rms_norm_eps", 1e-6)), n_kv_head=None if kv == heads else kv,
            n_inner=d["intermediate_size"], rope_theta=float(theta), **switches,
        )


def count_parameters(config: GPTConfig, exclude_embeddings: bool = False) -> int:
    """The number of parameters of `GPT(config)`, without allocating its weights.

    The model is built on PyTorch's "meta" device, which records shapes only, so even
    gpt2-xl (1.5 billion parameters) is counted in a blink.
    """
    with torch.device("meta"):
        model = GPT(config)
    return model.num_parameters(exclude_embeddings=exclude_embeddings)


def _is_compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling())


_K1 = 2.0 * math.sqrt(2.0 / math.pi)  # 2z = K1 * x + K2 * x^3 for GELU's tanh argument z
_K2 = _K1 * 0.044715


class _SigmoidFormGELU(torch.autograd.Function):
    """GELU (tanh form) as x * sigmoid(2z), with its derivative written out by hand."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        s = torch.addcmul(x.new_tensor(_K1), x, x, value=_K2)  # K1 + K2 x^2
        s.mul_(x).sigmoid_()  # sigmoid(2z) = (1 + tanh z) / 2
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        x, s = ctx.saved_tensors
        # d/dx [x s] = s + x s (1 - s) d(2z)/dx, with d(2z)/dx = K1 + 3 K2 x^2
        d = torch.addcmul(x.new_tensor(_K1), x, x, value=3 * _K2)
        d.mul_(x).mul_(torch.addcmul(s, s, s, value=-1.0)).add_(s)
        return d.mul_(grad)


class GELU(nn.Module):
    """GPT-2's GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    The same function as ``nn.GELU(approximate="tanh")`` (``gelu_new`` in transformers),
    computed a faster way on the CPU. Because 0.5 (1 + tanh z) = sigmoid(2z), GELU is
    x * sigmoid(2z), and PyTorch's vectorised sigmoid is cheaper there than its tanh, so
    forward and backward together beat the built-in kernel (figures in
    benchmarks/README.md, "Model training step"). Outputs agree to float32 rounding (tests
    compare both directions). On GPUs, in half precision and under ``torch.compile`` the
    built-in kernel is used.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float32 and not _is_compiling():
            return _SigmoidFormGELU.apply(x)
        return F.gelu(x, approximate="tanh")


class MLP(nn.Module):
    """Position-wise feed-forward: expand 4x, GELU (tanh form), project back."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, config.mlp_width, bias=config.bias)
        self.act = GELU()
        self.c_proj = nn.Linear(config.mlp_width, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))  # (B, T, C)


class Block(nn.Module):
    """A pre-LayerNorm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = make_norm(config)
        self.attn = CausalSelfAttention(config.n_embd, config.n_head, config.dropout, config.n_kv_head, config.bias)
        self.ln_2 = make_norm(config)
        self.mlp = MLP(config) if config.mlp == "gelu" else SwiGLUMLP(config)

    def forward(
        self,
        x: torch.Tensor,
        layer_past: KVCache | None = None,
        use_cache: bool = False,
        output_attentions: bool = False,
        rope: RoPE | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, KVCache | None, torch.Tensor | None]:
        a, present, weights = self.attn(self.ln_1(x), layer_past, use_cache, output_attentions, rope, attention_mask)
        x = x + a  # (B, T, C) the residual stream
        x = x + self.mlp(self.ln_2(x))
        return x, present, weights


# -- switches from GPT-2's descendants -------------------------------------------------
class RMSNorm(nn.Module):
    """Root-mean-square norm (Zhang & Sennrich, 2019): x / sqrt(mean(x^2) + eps) * weight.

    LayerNorm without the mean subtraction and the bias: one statistic instead of two,
    the same training in practice. Computed in float32 as `transformers`' LlamaRMSNorm.
    """

    def __init__(self, n_embd: int, eps: float = 1e-6, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_embd, device=device))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()  # (B, T, C)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)  # (B, T, C), rms 1 per position
        return self.weight * h.to(x.dtype)


class SwiGLUMLP(nn.Module):
    """Gated feed-forward (Shazeer, 2020): c_proj(silu(c_gate(x)) * c_fc(x)).

    One more matrix than GPT-2's MLP: `c_gate` decides, per hidden unit, how much of
    `c_fc`'s value passes. Llama names them gate_proj, up_proj (= c_fc), down_proj (= c_proj).
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, config.mlp_width, bias=config.bias)
        self.c_gate = nn.Linear(config.n_embd, config.mlp_width, bias=config.bias)
        self.c_proj = nn.Linear(config.mlp_width, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.c_gate(x)) * self.c_fc(x)  # (B, T, mlp_width)
        return self.dropout(self.c_proj(h))  # (B, T, C)


def make_norm(config: GPTConfig) -> nn.Module:
    """GPT-2's LayerNorm, or RMSNorm when config.norm == "rmsnorm" (no bias either way when bias=False)."""
    if config.norm == "rmsnorm":
        return RMSNorm(config.n_embd, eps=config.layer_norm_epsilon)
    return nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)


@dataclass
class GPTOutput:
    """What `GPT.forward` returns; the fields mean what they mean in `transformers`.

    logits (B, T, vocab); loss (scalar) when labels were given; past_key_values, one
    (k, v) pair of (B, nh, S, hs) per layer, when use_cache; attentions, one
    (B, nh, T, S) per layer; hidden_states, n_layer + 1 of (B, T, C), the last after ln_f.
    """

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    past_key_values: tuple[KVCache, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


class GPT(nn.Module):
    """The GPT-2 language model.

    One model with switches, not copies: attention weights, hidden states, the KV
    cache and gradient checkpointing are arguments or attributes of this one class.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd),
                wpe=nn.Embedding(config.n_positions, config.n_embd),
                drop=nn.Dropout(config.dropout),
                h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
                ln_f=make_norm(config),
            )
        )
        if config.position == "rope":  # switch: positions live in the rotation of q and k instead
            del self.transformer["wpe"]
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.transformer.wte.weight  # weight tying (Press & Wolf, 2017)
        self.gradient_checkpointing = False
        if not self.transformer.wte.weight.is_meta:  # meta tensors (shapes only) hold no values
            self.init_weights()

    def init_weights(self) -> None:
        """GPT-2's initialisation: N(0, 0.02^2) weights, zero biases, unit LayerNorms, and the
        projections that write into the residual stream scaled down by 1/sqrt(2 n_layer).
        """
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, (nn.LayerNorm, RMSNorm)):
            nn.init.ones_(module.weight)
        if isinstance(module, nn.LayerNorm) and module.bias is not None:
            nn.init.zeros_(module.bias)

    # -- conveniences ------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.transformer.wte.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.wte.weight.dtype

    def num_parameters(self, exclude_embeddings: bool = False, trainable_only: bool = False) -> int:
        """Parameters counted once each (the tied head is the embedding).

        `exclude_embeddings` leaves out the token and position embeddings, as
        `transformers`' `num_parameters(exclude_embeddings=True)` does (an untied head stays).
        """
        params = [p for p in self.parameters() if p.requires_grad or not trainable_only]
        n = sum(p.numel() for p in params)
        if exclude_embeddings:
            n -= sum(m.weight.numel() for m in self.transformer.values() if isinstance(m, nn.Embedding))
        return n

    def gradient_checkpointing_enable(self) -> None:
        """Recompute each block's activations in the backward pass instead of storing them."""
        self.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        self.gradient_checkpointing = False

    # -- forward -----------------------------------------------------------------------
    def _check_input(self, input_ids: torch.Tensor, past_length: int) -> None:
        if input_ids.dim() != 2:
            raise CourseInputError(f"input_ids must be (batch, time); got shape {tuple(input_ids.shape)}")
        if input_ids.dtype.is_floating_point or input_ids.dtype.is_complex or input_ids.dtype == torch.bool:
            raise CourseInputError(f"input_ids must hold integer token ids; got dtype {input_ids.dtype}")
        T = input_ids.size(1)
        if T == 0:
            raise CourseInputError("input_ids is empty: give at least one token")
        if past_length + T > self.config.n_positions:
            cached = f" ({past_length} cached + {T} new)" if past_length else ""
            raise CourseInputError(
                f"sequence of {past_length + T} tokens{cached} is longer than the model's context, "
                f"n_positions={self.config.n_positions}; crop it to the last {self.config.n_positions} tokens"
            )
        if _is_compiling():  # a data-dependent check would break the compiled graph
            return
        lo, hi = torch.stack([input_ids.min(), input_ids.max()]).tolist()  # one device sync, not two
        if lo < 0 or hi >= self.config.vocab_size:
            bad = hi if hi >= self.config.vocab_size else lo
            raise CourseInputError(
                f"token id {bad} is outside the vocabulary (valid ids are 0 .. {self.config.vocab_size - 1}); "
                "was the text encoded with another tokenizer?"
            )

    def _padding_mask(self, attention_mask: torch.Tensor | None, B: int, S: int) -> torch.Tensor | None:
        """The (B, S) padding mask, or None when there is no padding (the fast causal path)."""
        if attention_mask is None:
            return None
        if attention_mask.dim() != 2 or tuple(attention_mask.shape) != (B, S):
            raise CourseInputError(
                f"attention_mask has shape {tuple(attention_mask.shape)}; expected (batch, cached + new tokens) = "
                f"({B}, {S}): 1 for text, 0 for padding")
        if _is_compiling() or not bool(attention_mask.all()):
            return attention_mask.to(self.device)
        return None

    def _check_positions(self, position_ids: torch.Tensor, B: int, T: int) -> torch.Tensor:
        pos = position_ids if position_ids.dim() == 2 else position_ids.view(1, -1)
        if pos.size(1) != T or pos.size(0) not in (1, B):
            raise CourseInputError(
                f"position_ids has shape {tuple(position_ids.shape)}; expected ({B}, {T}) or (1, {T}): "
                "one position per new token")
        return pos.to(device=self.device, dtype=torch.long)

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        past_key_values: tuple[KVCache, ...] | None = None,
        use_cache: bool = False,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
    ) -> GPTOutput:
        """input_ids (B, T) -> GPTOutput; `labels` (B, T) are shifted inside, -100 is ignored.

        A batch of different-length texts (transformers' names and meanings): `attention_mask`
        (B, cached + T), 1 for text and 0 for padding, hides the pads from every query;
        `position_ids` (B, T) give each token its position (default: cached .. cached + T - 1 for
        every row; a left-padded row wants its pads skipped, as `generate` does). `logits_to_keep`
        = N computes the head for the last N positions only (0: all), or for the positions a 1-D
        tensor lists: generation needs only the last one.
        """
        past_length = past_key_values[0][0].size(2) if past_key_values else 0
        self._check_input(input_ids, past_length)
        B, T = input_ids.shape
        mask = self._padding_mask(attention_mask, B, past_length + T)
        pos = torch.arange(past_length, past_length + T, device=input_ids.device)  # (T,)
        if position_ids is not None:
            pos = self._check_positions(position_ids, B, T)  # (B, T) or (1, T)
        rope = None
        if self.config.position == "learned":
            x = self.transformer.drop(self.transformer.wte(input_ids) + self.transformer.wpe(pos))  # (B, T, C)
        else:  # switch: rotary positions, offset by what is cached; (cos, sin) each (T, hs)
            x = self.transformer.drop(self.transformer.wte(input_ids))  # (B, T, C)
            rope = rope_cos_sin(pos, self.config.head_size, self.config.rope_theta)
            if pos.dim() == 2:  # one row of positions per text: (B, 1, T, hs), broadcast over the heads
                rope = (rope[0][:, None], rope[1][:, None])
        if mask is not None:
            mask = padded_causal_mask(mask, T)  # (B, 1, T, S), built once for every layer

        presents: list[KVCache] = []
        attentions: list[torch.Tensor] = []
        hidden: list[torch.Tensor] = []
        checkpointing = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for i, block in enumerate(self.transformer.h):
            if output_hidden_states:
                hidden.append(x)
            layer_past = past_key_values[i] if past_key_values else None
            if checkpointing:
                x, present, weights = checkpoint(
                    block, x, layer_past, use_cache, output_attentions, rope, mask, use_reentrant=False
                )
            else:
                x, present, weights = block(x, layer_past, use_cache, output_attentions, rope, mask)
            if use_cache:
                presents.append(present)
            if output_attentions:
                attentions.append(weights)
        x = self.transformer.ln_f(x)
        if output_hidden_states:
            hidden.append(x)
        if isinstance(logits_to_keep, int) and logits_to_keep == 0:
            logits = self.lm_head(x)  # (B, T, vocab)
        else:  # only the positions asked for: generating needs the last one, not a (B, T, vocab) tensor
            keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
            if labels is not None:
                raise CourseInputError("labels need the logits of every position: leave logits_to_keep at 0")
            logits = self.lm_head(x[:, keep])  # (B, N, vocab)

        loss = None
        if labels is not None:
            if labels.shape != input_ids.shape:
                raise CourseInputError(
                    f"labels must have the shape of input_ids {tuple(input_ids.shape)}; got {tuple(labels.shape)} "
                    "(they are shifted inside: pass labels=input_ids for next-token prediction)"
                )
            # Position t predicts token t + 1. Shifting the (small) labels instead of the (huge)
            # logits avoids copying a (B, T, vocab) tensor; the last position predicts nothing.
            targets = F.pad(labels[:, 1:].to(logits.device), (0, 1), value=-100)  # (B, T)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
        return GPTOutput(
            logits=logits,
            loss=loss,
            past_key_values=tuple(presents) if use_cache else None,
            attentions=tuple(attentions) if output_attentions else None,
            hidden_states=tuple(hidden) if output_hidden_states else None,
        )

    # -- Hugging Face interop ----------------------------------------------------------
    def hf_state_dict(self) -> dict[str, torch.Tensor]:
        """This model's weights named and shaped as `GPT2LMHeadModel` (or `LlamaForCausalLM`) stores them."""
        if self.config._require_hf() == "LlamaForCausalLM":
            return self._llama_state_dict()
        out = {}
        for name, t in self.state_dict().items():
            if name == "lm_head.weight" and self.config.tie_word_embeddings:
                continue  # tied to transformer.wte.weight
            out[name] = t.t().contiguous() if name.endswith(CONV1D_WEIGHTS) else t.contiguous()
        return out

    def load_hf_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        """Load weights in Hugging Face's naming and shapes; mismatches are listed by name."""
        llama = self.config._require_hf() == "LlamaForCausalLM"
        if llama:
            sd = self._from_llama_names(sd)
        ours = self.state_dict()
        converted, missing, mismatched = {}, [], []
        for name, mine in ours.items():
            if name == "lm_head.weight" and self.config.tie_word_embeddings:
                continue
            if name not in sd:
                missing.append(name)
                continue
            t = sd[name]
            t = t.t() if not llama and name.endswith(CONV1D_WEIGHTS) and t.dim() == 2 else t
            if tuple(t.shape) != tuple(mine.shape):
                mismatched.append(f"{name}: checkpoint {tuple(t.shape)}, model {tuple(mine.shape)}")
                continue
            converted[name] = t
        unexpected = [k for k in sd if k not in ours and not ignored_state_key(k)]
        if missing or mismatched or unexpected:
            parts = []
            if mismatched:
                parts.append("shapes differ for " + "; ".join(mismatched))
            if missing:
                parts.append("missing " + ", ".join(missing))
            if unexpected:
                parts.append("unexpected " + ", ".join(unexpected))
            raise CourseInputError("weights do not fit this GPTConfig: " + " | ".join(parts))
        with torch.no_grad():
            for name, t in converted.items():
                ours[name].copy_(t)

    def _llama_state_dict(self) -> dict[str, torch.Tensor]:
        """Our weights under `LlamaForCausalLM`'s names; c_attn split into q_proj, k_proj, v_proj."""
        C, kv = self.config.n_embd, self.config.kv_heads * self.config.head_size
        out = {}
        for name, t in self.state_dict().items():
            if name == "lm_head.weight" and self.config.tie_word_embeddings:
                continue
            if name in LLAMA_TOP_NAMES:
                out[LLAMA_TOP_NAMES[name]] = t.contiguous()
                continue
            _, _, i, inner = name.split(".", 3)  # transformer.h.{i}.{inner}
            if inner.startswith("attn.c_attn."):
                kind = inner.rsplit(".", 1)[1]  # weight or bias
                for part, piece in zip(LLAMA_QKV, t.split([C, kv, kv], dim=0)):  # q (C, ..), k v (kv, ..)
                    out[f"model.layers.{i}.{part}.{kind}"] = piece.contiguous()
            else:
                out[f"model.layers.{i}.{LLAMA_BLOCK_NAMES[inner]}"] = t.contiguous()
        return out

    def _from_llama_names(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """`LlamaForCausalLM` names -> ours; q, k, v stacked into c_attn. Unknown names pass through."""
        top = {v: k for k, v in LLAMA_TOP_NAMES.items()}
        block = {v: k for k, v in LLAMA_BLOCK_NAMES.items()}
        out: dict[str, torch.Tensor] = {}
        qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
        for name, t in sd.items():
            if name in top:
                out[top[name]] = t
                continue
            parts = name.split(".", 3)
            if len(parts) == 4 and parts[:2] == ["model", "layers"]:
                i, inner = parts[2], parts[3]
                head, _, kind = inner.rpartition(".")
                if head in LLAMA_QKV:
                    qkv.setdefault((i, kind), {})[head] = t
                    continue
                if inner in block:
                    out[f"transformer.h.{i}.{block[inner]}"] = t
                    continue
            out[name] = t  # reported as unexpected
        for (i, kind), pieces in qkv.items():
            if len(pieces) == 3:
                out[f"transformer.h.{i}.attn.c_attn.{kind}"] = torch.cat([pieces[p] for p in LLAMA_QKV], dim=0)
            else:
                out.update({f"model.layers.{i}.{p}.{kind}": t for p, t in pieces.items()})
        return out

    @classmethod
    def from_hf(cls, model_or_name: Any) -> GPT:
        """A course GPT with the weights of a `GPT2LMHeadModel` (or a `LlamaForCausalLM`: the
        Llama switches are set from its config), a hub name or a local folder.
        """
        if isinstance(model_or_name, (str, os.PathLike)):
            from transformers import GPT2LMHeadModel

            model_or_name = GPT2LMHeadModel.from_pretrained(str(model_or_name))
        hf = model_or_name
        model = cls(GPTConfig.from_hf(hf.config))
        model.load_hf_state_dict({k: v.detach().float() for k, v in hf.state_dict().items()})
        return model.to(hf.device)

    def to_hf(self, attn_implementation: str | None = "eager") -> Any:
        """A `transformers.GPT2LMHeadModel` (or, with the Llama switches, `LlamaForCausalLM`) with
        this model's weights (eager attention by default).
        """
        import transformers

        kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
        hf = getattr(transformers, self.config._require_hf())(self.config.to_hf(**kwargs))
        missing, unexpected = hf.load_state_dict(self.hf_state_dict(), strict=False)
        leftover = [k for k in missing if not ignored_state_key(k)]
        if leftover or unexpected:  # pragma: no cover - would be a conversion bug
            raise RuntimeError(f"to_hf: missing {leftover}, unexpected {unexpected}")
        hf.tie_weights()
        return hf.to(self.device).train(self.training)

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write a Hugging Face model folder (config.json + model.safetensors).

        `GPT2LMHeadModel.from_pretrained(dir)` and `pipeline("text-generation", model=dir)`
        load it; so does `GPT.from_pretrained(dir)`.
        """
        from safetensors.torch import save_file

        d = Path(save_directory)
        d.mkdir(parents=True, exist_ok=True)
        hf_config = self.config.to_hf(architectures=[self.config._require_hf()])
        hf_config.save_pretrained(d)
        sd = {k: v.detach().cpu() for k, v in self.hf_state_dict().items()}
        save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
        usual_permissions(d / "model.safetensors")  # safetensors writes it owner-only (0o600)
        return d

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike) -> GPT:
        """Load a folder written by `save_pretrained` (or by transformers), or a hub name like "gpt2".
        """
        d = Path(name_or_dir)
        if d.is_dir():
            if not (d / "config.json").is_file():
                raise CourseInputError(f"{d} has no config.json; is it a model folder?")
            config = GPTConfig.from_hf(json.loads((d / "config.json").read_text(encoding="utf-8")))
            weights = d / "model.safetensors"
            if weights.is_file():
                from safetensors.torch import load_file

                sd = load_file(weights)
            elif (d / "pytorch_model.bin").is_file():
                sd = torch.load(d / "pytorch_model.bin", map_location="cpu", weights_only=True)
            else:
                raise CourseInputError(f"{d} holds no model.safetensors (or pytorch_model.bin)")
            if config.hf_architecture == "LlamaForCausalLM":
                if not any(k.startswith("model.") for k in sd):  # saved from LlamaModel
                    sd = {f"model.{k}": v for k, v in sd.items()}
            else:
                sd = {k.removeprefix("model."): v for k, v in sd.items()}
                if not any(k.startswith("transformer.") for k in sd):  # saved from GPT2Model
                    sd = {f"transformer.{k}": v for k, v in sd.items()}
            model = cls(config)
            model.load_hf_state_dict({k: v.float() for k, v in sd.items()})
            return model
        return cls.from_hf(str(name_or_dir))
