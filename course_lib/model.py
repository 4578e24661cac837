"""GPT-2 (Radford et al., 2019): the configuration, the pieces of a block, the block, the model.

Read top to bottom as notebooks 04 and 05 build it: `GPTConfig`, the norms and GELU, the MLP, the
`Block` (its attention is `course_lib.attention`'s), `GPT`; every module is built from the config.
Parameter names are GPT-2's (`transformer.h.{i}.attn.c_attn`, ...), so a state dict reads side by
side with Hugging Face's; `course_lib.convert` converts to and from `transformers`, and
`course_lib.model_checks` turns a wrong config value or input into one clear error line.

Switches, not copies: each part GPT-2's descendants changed is a `GPTConfig` field whose default
keeps GPT-2 (`norm`, `position`, `mlp`, `n_kv_head`, `bias`, `tie_word_embeddings`); all of them
on (`LLAMA_SWITCHES`) make a model that converts to and from `transformers`' `LlamaForCausalLM`.

Introduced in notebooks/04_transformer_block.ipynb and notebooks/05_gpt2_model.ipynb;
the switches in notebooks/11_beyond_gpt2.ipynb.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from . import convert, model_checks
from .attention import CausalSelfAttention, LayerCache, RoPE, padded_causal_mask, rope_cos_sin
from .convert import CONV1D_WEIGHTS  # noqa: F401 - GPT-2's transposed weights, named here too
from .errors import CourseInputError
from .io import JsonConfig
from .kernels import SigmoidFormGELU, is_compiling

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


# -- The configuration -------------------------------------------------------------------
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
        model_checks.check_config(self)  # impossible values raise, naming what would work

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

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GPTConfig:
        """One of "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "tiny", with overrides."""
        if name not in PRESETS:
            raise CourseInputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    # -- Hugging Face: course_lib.convert does the work
    @property
    def hf_architecture(self) -> str | None:
        """The `transformers` class this configuration converts to, or None for a course-only mix."""
        return getattr(convert.architecture_of(self), "hf_class", None)

    def to_hf(self, **kwargs: Any) -> Any:
        """The equivalent `transformers.GPT2Config` or `LlamaConfig` (extra kwargs are passed through)."""
        return convert.config_to_hf(self, **kwargs)

    @classmethod
    def from_hf(cls, hf_config: Any) -> GPTConfig:
        """Read a `transformers.GPT2Config` or `LlamaConfig` (or its dict), refusing what they are not."""
        return cls(**convert.config_fields_from_hf(hf_config))


# -- Norms and GELU ----------------------------------------------------------------------
class RMSNorm(nn.Module):
    """Root-mean-square norm (Zhang & Sennrich, 2019), the `norm="rmsnorm"` switch: LayerNorm without the
    mean and the bias, x / sqrt(mean(x^2) + eps) * weight, in float32 as `transformers`' LlamaRMSNorm.
    """

    def __init__(self, n_embd: int, eps: float = 1e-6, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_embd, device=device))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()  # (B, T, C)
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)  # (B, T, C), rms 1 per position
        return self.weight * h.to(x.dtype)


def make_norm(config: GPTConfig) -> nn.Module:
    """GPT-2's LayerNorm, or RMSNorm when config.norm == "rmsnorm" (no bias either way when bias=False)."""
    if config.norm == "rmsnorm":
        return RMSNorm(config.n_embd, eps=config.layer_norm_epsilon)
    return nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)


class GELU(nn.Module):
    """GPT-2's GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    ``nn.GELU(approximate="tanh")`` (``gelu_new`` in transformers); on the CPU in float32 the
    faster hand-written `kernels.SigmoidFormGELU` computes the same numbers.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float32 and not is_compiling():
            return SigmoidFormGELU.apply(x)
        return F.gelu(x, approximate="tanh")


# -- The MLP -----------------------------------------------------------------------------
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


class SwiGLUMLP(nn.Module):
    """Gated feed-forward (Shazeer, 2020), the `mlp="swiglu"` switch: c_proj(silu(c_gate(x)) * c_fc(x)).
    `c_gate` decides, per hidden unit, how much of `c_fc`'s value passes (Llama: gate_proj, up_proj, down_proj).
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


# -- The block ---------------------------------------------------------------------------
class Block(nn.Module):
    """A pre-LayerNorm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = make_norm(config)
        self.attn = CausalSelfAttention(config.n_embd, config.n_head, config.dropout, config.n_kv_head, config.bias)
        self.ln_2 = make_norm(config)
        self.mlp = MLP(config) if config.mlp == "gelu" else SwiGLUMLP(config)

    def forward(self, x: torch.Tensor, layer_past: LayerCache | None = None, use_cache: bool = False,
                output_attentions: bool = False, rope: RoPE | None = None,
                attention_mask: torch.Tensor | None = None,
                ) -> tuple[torch.Tensor, LayerCache | None, torch.Tensor | None]:
        a, present, weights = self.attn(self.ln_1(x), layer_past, use_cache, output_attentions, rope, attention_mask)
        x = x + a  # (B, T, C) the residual stream
        x = x + self.mlp(self.ln_2(x))
        return x, present, weights


# -- The model ---------------------------------------------------------------------------
@dataclass
class GPTOutput:
    """What `GPT.forward` returns, the fields named as in `transformers`: logits (B, T, vocab); loss when
    labels were given; past_key_values, one (k, v) of (B, nkv, S, hs) per layer, when use_cache; attentions,
    one (B, nh, T, S) per layer; hidden_states, n_layer + 1 of (B, T, C), the last after ln_f.
    """

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    past_key_values: tuple[LayerCache, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


class GPT(nn.Module):
    """The GPT-2 language model; attention weights, hidden states, the KV cache and gradient
    checkpointing are arguments or attributes of this one class."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.n_positions, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=make_norm(config),
        ))
        if config.position == "rope":  # switch: positions live in the rotation of q and k instead
            del self.transformer["wpe"]
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.transformer.wte.weight  # weight tying (Press & Wolf, 2017)
        self.gradient_checkpointing = False
        if not self.transformer.wte.weight.is_meta:  # meta tensors (shapes only) hold no values
            self.init_weights()

    def init_weights(self) -> None:
        """GPT-2's initialisation: N(0, 0.02^2) weights, zero biases, unit norms, and the
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
        if isinstance(module, (nn.LayerNorm, RMSNorm)):
            nn.init.ones_(module.weight)
        if isinstance(module, (nn.Linear, nn.LayerNorm)) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None,
                past_key_values: tuple[LayerCache, ...] | None = None, use_cache: bool = False,
                output_attentions: bool = False, output_hidden_states: bool = False,
                attention_mask: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                logits_to_keep: int | torch.Tensor = 0) -> GPTOutput:
        """input_ids (B, T) -> GPTOutput; `labels` (B, T) are shifted inside, -100 is ignored.

        A batch of different-length texts (transformers' names and meanings): `attention_mask`
        (B, cached + T), 1 for text and 0 for padding, hides the pads from every query;
        `position_ids` (B, T) give each token its position (default: cached .. cached + T - 1 for
        every row; a left-padded row wants its pads skipped, as `generate` does). `logits_to_keep`
        = N computes the head for the last N positions only (0: all), or for the positions a 1-D
        tensor lists: generation needs only the last one.
        """
        past_length = past_key_values[0][0].size(2) if past_key_values else 0
        model_checks.check_input_ids(input_ids, self.config, past_length)
        B, T = input_ids.shape
        mask = model_checks.padding_mask(attention_mask, B, past_length + T, self.device)  # (B, S) or None
        pos = torch.arange(past_length, past_length + T, device=input_ids.device)  # (T,)
        if position_ids is not None:
            pos = model_checks.positions(position_ids, B, T, self.device)  # (B, T) or (1, T)
        x, rope = self._embed(input_ids, pos)  # (B, T, C); rope = (cos, sin) or None
        if mask is not None:
            mask = padded_causal_mask(mask, T)  # (B, 1, T, S), built once for every layer
        run_checkpointed = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        presents, attentions, hidden = [], [], []
        for i, block in enumerate(self.transformer.h):
            if output_hidden_states:
                hidden.append(x)
            run = partial(checkpoint, block, use_reentrant=False) if run_checkpointed else block
            x, present, weights = run(x, past_key_values[i] if past_key_values else None, use_cache,
                                      output_attentions, rope, mask)
            presents.append(present)
            attentions.append(weights)
        x = self.transformer.ln_f(x)  # (B, T, C)
        if isinstance(logits_to_keep, int) and logits_to_keep == 0:
            logits = self.lm_head(x)  # (B, T, vocab)
        else:  # only the positions asked for: generating needs the last one, not a (B, T, vocab) tensor
            if labels is not None:
                raise CourseInputError("labels need the logits of every position: leave logits_to_keep at 0")
            keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
            logits = self.lm_head(x[:, keep])  # (B, N, vocab)
        return GPTOutput(
            logits=logits,
            loss=None if labels is None else next_token_loss(logits, labels),
            past_key_values=tuple(presents) if use_cache else None,
            attentions=tuple(attentions) if output_attentions else None,
            hidden_states=(*hidden, x) if output_hidden_states else None,
        )

    def _embed(self, input_ids: torch.Tensor, pos: torch.Tensor) -> tuple[torch.Tensor, RoPE | None]:
        """Token (+ position) embeddings, (B, T, C); with RoPE, the (cos, sin) of the T new positions.
        `pos`: (T,) shared by every row, or (B, T) / (1, T) one row of positions per text."""
        x = self.transformer.wte(input_ids)  # (B, T, C)
        if self.config.position == "learned":
            return self.transformer.drop(x + self.transformer.wpe(pos)), None
        # switch: rotary positions, offset by what is cached; (cos, sin) each (T, hs)
        cos, sin = rope_cos_sin(pos, self.config.head_size, self.config.rope_theta)
        if pos.dim() == 2:  # one row of positions per text: (B, 1, T, hs), broadcast over the heads
            cos, sin = cos[:, None], sin[:, None]
        return self.transformer.drop(x), (cos, sin)

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
        n = sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
        if exclude_embeddings:
            n -= sum(m.weight.numel() for m in self.transformer.values() if isinstance(m, nn.Embedding))
        return n

    def gradient_checkpointing_enable(self) -> None:
        """Recompute each block's activations in the backward pass instead of storing them."""
        self.gradient_checkpointing = True

    # -- Hugging Face: course_lib.convert does the work
    def hf_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights named and shaped as `GPT2LMHeadModel` (or `LlamaForCausalLM`) stores them."""
        return convert.to_hf_state_dict(self)

    def load_hf_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        """Load weights in Hugging Face's names and shapes; mismatches are listed by name."""
        convert.load_hf_state_dict(self, sd)

    def _from_llama_names(self, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return convert.from_hf_names(convert.LLAMA, sd)  # tests compare gradients by name with it

    @classmethod
    def from_hf(cls, model_or_name: Any) -> GPT:
        """A course GPT with the weights of a `GPT2LMHeadModel` or `LlamaForCausalLM`, a hub name or a folder."""
        hf = convert.load_hf_model(model_or_name) if isinstance(model_or_name, (str, os.PathLike)) else model_or_name
        model = cls(GPTConfig.from_hf(hf.config))
        model.load_hf_state_dict({k: v.detach().float() for k, v in hf.state_dict().items()})
        return model.to(hf.device)

    def to_hf(self, attn_implementation: str | None = "eager") -> Any:
        """The same weights in `transformers`' `GPT2LMHeadModel` (or `LlamaForCausalLM`), eager attention."""
        return convert.to_hf(self, attn_implementation)

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write config.json + model.safetensors: `transformers`, `pipeline` and `from_pretrained` load it."""
        return convert.save_pretrained(self, save_directory)

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike) -> GPT:
        """Load a folder written by `save_pretrained` (or by transformers), or a hub name like "gpt2"."""
        if not Path(name_or_dir).is_dir():
            return cls.from_hf(str(name_or_dir))
        fields, sd = convert.read_pretrained(name_or_dir)
        model = cls(GPTConfig(**fields))
        model.load_hf_state_dict(sd)
        return model


def next_token_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits (B, T, vocab) at position t against labels[t + 1]; -100 is ignored."""
    if labels.shape != logits.shape[:2]:
        raise CourseInputError(
            f"labels must have the shape of input_ids {tuple(logits.shape[:2])}; got {tuple(labels.shape)} "
            "(they are shifted inside: pass labels=input_ids for next-token prediction)")
    # Shifting the (small) labels instead of the (huge) logits avoids copying a (B, T, vocab)
    # tensor; the last position predicts nothing.
    targets = F.pad(labels[:, 1:].to(logits.device), (0, 1), value=-100)  # (B, T)
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)


def count_parameters(config: GPTConfig, exclude_embeddings: bool = False) -> int:
    """The number of parameters of `GPT(config)`, without allocating its weights.

    The model is built on PyTorch's "meta" device, which records shapes only, so even
    gpt2-xl (1.5 billion parameters) is counted in a blink.
    """
    with torch.device("meta"):
        model = GPT(config)
    return model.num_parameters(exclude_embeddings=exclude_embeddings)
