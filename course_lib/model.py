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

Introduced in notebooks/04_transformer_block.ipynb and notebooks/05_gpt2_model.ipynb.
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

from .attention import CausalSelfAttention, KVCache
from .errors import CourseInputError
from .io import JsonConfig, usual_permissions

# The four weights Hugging Face stores as Conv1D (in, out); we store them as Linear (out, in).
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")

PRESETS: dict[str, dict[str, int]] = {
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768),  # 124M
    "gpt2-medium": dict(n_layer=24, n_head=16, n_embd=1024),  # 350M
    "gpt2-large": dict(n_layer=36, n_head=20, n_embd=1280),  # 774M
    "gpt2-xl": dict(n_layer=48, n_head=25, n_embd=1600),  # 1558M
    "tiny": dict(n_layer=4, n_head=4, n_embd=128, n_positions=256),  # CPU-sized
}


@dataclass
class GPTConfig(JsonConfig):
    """The shape of a GPT-2 model. Round-trips through JSON; impossible values raise.

    Introduced in notebooks/05_gpt2_model.ipynb.
    """

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    dropout: float = 0.0
    layer_norm_epsilon: float = 1e-5

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

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GPTConfig:
        """One of "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "tiny", with overrides."""
        if name not in PRESETS:
            raise CourseInputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


    # -- Hugging Face GPT2Config -------------------------------------------------------
    def to_hf(self, **kwargs: Any) -> Any:
        """The equivalent `transformers.GPT2Config` (extra kwargs are passed through)."""
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
            tie_word_embeddings=True, **kwargs,
        )

    @classmethod
    def from_hf(cls, hf_config: Any) -> GPTConfig:
        """Read a `transformers.GPT2Config` (or its dict), refusing what GPT-2 is not."""
        d = hf_config if isinstance(hf_config, dict) else hf_config.to_dict()
        act = d.get("activation_function", "gelu_new")
        if act not in ("gelu_new", "gelu_pytorch_tanh"):
            raise CourseInputError(f"unsupported activation_function {act!r}: the course GPT uses gelu_new")
        drops = {d.get(k, 0.0) for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
        return cls(
            vocab_size=d["vocab_size"], n_positions=d["n_positions"], n_embd=d["n_embd"],
            n_layer=d["n_layer"], n_head=d["n_head"], dropout=float(max(drops)),
            layer_norm_epsilon=float(d.get("layer_norm_epsilon", 1e-5)),
        )


def count_parameters(config: GPTConfig, exclude_embeddings: bool = False) -> int:
    """The number of parameters of `GPT(config)`, without allocating its weights.

    The model is built on PyTorch's "meta" device, which records shapes only, so even
    gpt2-xl (1.5 billion parameters) is counted in a blink.

    Introduced in notebooks/05_gpt2_model.ipynb.
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
    x * sigmoid(2z), and PyTorch's vectorised sigmoid is much cheaper there than its tanh:
    forward and backward together take about 0.7x the time of the built-in kernel on the
    course's 2-core CPU (0.83x on large activations), which is ~2% of a small model's
    training step. Outputs agree to float32 rounding (tests compare both directions). On
    GPUs, in half precision and under ``torch.compile`` the built-in kernel is used.

    Introduced in notebooks/04_transformer_block.ipynb.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float32 and not _is_compiling():
            return _SigmoidFormGELU.apply(x)
        return F.gelu(x, approximate="tanh")


class MLP(nn.Module):
    """Position-wise feed-forward: expand 4x, GELU (tanh form), project back.

    Introduced in notebooks/04_transformer_block.ipynb.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.act = GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))  # (B, T, C)


class Block(nn.Module):
    """A pre-LayerNorm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).

    Introduced in notebooks/04_transformer_block.ipynb.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = CausalSelfAttention(config.n_embd, config.n_head, config.dropout)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        layer_past: KVCache | None = None,
        use_cache: bool = False,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, KVCache | None, torch.Tensor | None]:
        a, present, weights = self.attn(self.ln_1(x), layer_past, use_cache, output_attentions)
        x = x + a  # (B, T, C) the residual stream
        x = x + self.mlp(self.ln_2(x))
        return x, present, weights


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

    Introduced in notebooks/05_gpt2_model.ipynb.
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
                ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon),
            )
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying (Press & Wolf, 2017)
        self.gradient_checkpointing = False
        if not self.transformer.wte.weight.is_meta:  # meta tensors (shapes only) hold no values
            self.init_weights()

    def init_weights(self) -> None:
        """GPT-2's initialisation: N(0, 0.02^2) weights, zero biases, unit LayerNorms, and the
        projections that write into the residual stream scaled down by 1/sqrt(2 n_layer).

        Introduced in notebooks/05_gpt2_model.ipynb.
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
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
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
        `transformers`' `num_parameters(exclude_embeddings=True)` does.
        """
        params = [p for p in self.parameters() if p.requires_grad or not trainable_only]
        n = sum(p.numel() for p in params)
        if exclude_embeddings:
            n -= self.transformer.wte.weight.numel() + self.transformer.wpe.weight.numel()
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

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        past_key_values: tuple[KVCache, ...] | None = None,
        use_cache: bool = False,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> GPTOutput:
        """input_ids (B, T) -> GPTOutput; `labels` (B, T) are shifted inside, -100 is ignored."""
        past_length = past_key_values[0][0].size(2) if past_key_values else 0
        self._check_input(input_ids, past_length)
        B, T = input_ids.shape
        pos = torch.arange(past_length, past_length + T, device=input_ids.device)  # (T,)
        x = self.transformer.drop(self.transformer.wte(input_ids) + self.transformer.wpe(pos))  # (B, T, C)

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
                    block, x, layer_past, use_cache, output_attentions, use_reentrant=False
                )
            else:
                x, present, weights = block(x, layer_past, use_cache, output_attentions)
            if use_cache:
                presents.append(present)
            if output_attentions:
                attentions.append(weights)
        x = self.transformer.ln_f(x)
        if output_hidden_states:
            hidden.append(x)
        logits = self.lm_head(x)  # (B, T, vocab)

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
        """This model's weights named and shaped as `GPT2LMHeadModel` stores them."""
        out = {}
        for name, t in self.state_dict().items():
            if name == "lm_head.weight":
                continue  # tied to transformer.wte.weight
            out[name] = t.t().contiguous() if name.endswith(CONV1D_WEIGHTS) else t.contiguous()
        return out

    def load_hf_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        """Load weights in Hugging Face's naming and shapes; mismatches are listed by name."""
        ours = self.state_dict()
        converted, missing, mismatched = {}, [], []
        for name, mine in ours.items():
            if name == "lm_head.weight":
                continue
            if name not in sd:
                missing.append(name)
                continue
            t = sd[name]
            t = t.t() if name.endswith(CONV1D_WEIGHTS) and t.dim() == 2 else t
            if tuple(t.shape) != tuple(mine.shape):
                mismatched.append(f"{name}: checkpoint {tuple(t.shape)}, model {tuple(mine.shape)}")
                continue
            converted[name] = t
        ignorable = ("lm_head.weight", ".attn.bias", ".attn.masked_bias")
        unexpected = [k for k in sd if k not in ours and not k.endswith(ignorable)]
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

    @classmethod
    def from_hf(cls, model_or_name: Any) -> GPT:
        """A course GPT with the weights of a `GPT2LMHeadModel`, a hub name or a local folder.

        Introduced in notebooks/05_gpt2_model.ipynb.
        """
        if isinstance(model_or_name, (str, os.PathLike)):
            from transformers import GPT2LMHeadModel

            model_or_name = GPT2LMHeadModel.from_pretrained(str(model_or_name))
        hf = model_or_name
        model = cls(GPTConfig.from_hf(hf.config))
        model.load_hf_state_dict({k: v.detach().float() for k, v in hf.state_dict().items()})
        return model.to(hf.device)

    def to_hf(self, attn_implementation: str | None = "eager") -> Any:
        """A `transformers.GPT2LMHeadModel` with this model's weights (eager attention by default).

        Introduced in notebooks/05_gpt2_model.ipynb.
        """
        from transformers import GPT2LMHeadModel

        kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
        hf = GPT2LMHeadModel(self.config.to_hf(**kwargs))
        missing, unexpected = hf.load_state_dict(self.hf_state_dict(), strict=False)
        leftover = [k for k in missing if k != "lm_head.weight" and not k.endswith((".attn.bias", ".attn.masked_bias"))]
        if leftover or unexpected:  # pragma: no cover - would be a conversion bug
            raise RuntimeError(f"to_hf: missing {leftover}, unexpected {unexpected}")
        hf.tie_weights()
        return hf.to(self.device).train(self.training)

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write a Hugging Face model folder (config.json + model.safetensors).

        `GPT2LMHeadModel.from_pretrained(dir)` and `pipeline("text-generation", model=dir)`
        load it; so does `GPT.from_pretrained(dir)`.

        Introduced in notebooks/05_gpt2_model.ipynb.
        """
        from safetensors.torch import save_file

        d = Path(save_directory)
        d.mkdir(parents=True, exist_ok=True)
        hf_config = self.config.to_hf(architectures=["GPT2LMHeadModel"])
        hf_config.save_pretrained(d)
        sd = {k: v.detach().cpu() for k, v in self.hf_state_dict().items()}
        save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
        usual_permissions(d / "model.safetensors")  # safetensors writes it owner-only (0o600)
        return d

    @classmethod
    def from_pretrained(cls, name_or_dir: str | os.PathLike) -> GPT:
        """Load a folder written by `save_pretrained` (or by transformers), or a hub name like "gpt2".

        Introduced in notebooks/05_gpt2_model.ipynb.
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
            sd = {k.removeprefix("model."): v for k, v in sd.items()}
            if not any(k.startswith("transformer.") for k in sd):  # saved from GPT2Model
                sd = {f"transformer.{k}": v for k, v in sd.items()}
            model = cls(config)
            model.load_hf_state_dict({k: v.float() for k, v in sd.items()})
            return model
        return cls.from_hf(str(name_or_dir))
