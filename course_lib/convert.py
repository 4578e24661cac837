"""The course GPT to and from Hugging Face `transformers`: one table per architecture.

The course `GPT` keeps GPT-2's parameter names (``transformer.h.{i}.attn.c_attn.weight``, ...).
Each `transformers` class it converts to is one `Architecture` entry: which `GPTConfig` switches
make it, its config fields, and a name table for the weights (ours -> theirs). The functions below
read the table and never name a class: a new architecture is a new entry in `ARCHITECTURES`.

- `GPT2` (``GPT2LMHeadModel``): the names are ours; the four Conv1D weights are stored
  transposed there, (in, out) instead of `nn.Linear`'s (out, in).
- `LLAMA` (``LlamaForCausalLM``): RMSNorm, RoPE and SwiGLU together (any bias and key/value heads);
  ``attn.c_attn`` is ``q_proj``, ``k_proj``, ``v_proj`` stacked.

This module never imports `model`: it works on the model's ``config`` and state dict, and returns
GPTConfig fields as a dict (`config_fields_from_hf`); `model.GPT`'s `from_hf`, `to_hf`,
`save_pretrained` and `from_pretrained` are thin calls into it.

Introduced in notebooks/05_gpt2_model.ipynb; the Llama table in notebook 11.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from .errors import CourseInputError
from .io import ignored_state_key, usual_permissions

StateDict = dict[str, torch.Tensor]


class Shape(Protocol):
    """The `GPTConfig` fields a conversion reads (GPTConfig itself fits)."""

    vocab_size: int
    n_positions: int
    n_embd: int
    n_layer: int
    n_head: int
    dropout: float
    layer_norm_epsilon: float
    norm: str
    position: str
    mlp: str
    n_kv_head: int | None
    bias: bool
    tie_word_embeddings: bool
    n_inner: int | None
    rope_theta: float
    head_size: int
    kv_heads: int
    mlp_width: int


class ConfiguredModel(Protocol):
    """A module with a `Shape` config: the course `GPT`."""

    config: Shape

    def state_dict(self) -> StateDict: ...


@dataclass(frozen=True)
class Architecture:
    """One `transformers` class the course GPT converts to and from.

    `fits` says whether a config's switches are this class; `block` maps our names inside
    ``transformer.h.{i}.`` to theirs inside ``{layers}.{i}.`` and `top` the names outside the
    blocks (a name in neither table is the same in both). `qkv`, when set, are the three
    projections that ``attn.c_attn`` is split into; `transposed` are stored (in, out) there.
    `base_prefix` is what the base model (without the head) puts before every name.
    """

    hf_class: str
    model_type: str
    fits: Callable[[Shape], bool]
    config_to_hf: Callable[..., Any]
    config_from_hf: Callable[[dict[str, Any]], dict[str, Any]]
    layers: str
    base_prefix: str
    top: dict[str, str] = field(default_factory=dict)
    block: dict[str, str] = field(default_factory=dict)
    qkv: tuple[str, str, str] | None = None
    transposed: tuple[str, ...] = ()


# --------------------------------------------------------------------------- GPT-2
# The four weights Hugging Face stores as Conv1D (in, out); we store them as Linear (out, in).
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def _gpt2_config_to_hf(c: Shape, **kwargs: Any) -> Any:
    from transformers import GPT2Config

    special = 50256 if c.vocab_size > 50256 else None  # <|endoftext|>; a smaller vocabulary names its own
    kwargs.setdefault("bos_token_id", special)
    kwargs.setdefault("eos_token_id", special)
    return GPT2Config(
        vocab_size=c.vocab_size, n_positions=c.n_positions, n_embd=c.n_embd, n_layer=c.n_layer,
        n_head=c.n_head, resid_pdrop=c.dropout, embd_pdrop=c.dropout, attn_pdrop=c.dropout,
        layer_norm_epsilon=c.layer_norm_epsilon, activation_function="gelu_new",
        tie_word_embeddings=c.tie_word_embeddings, n_inner=c.n_inner, **kwargs,
    )


def _gpt2_config_from_hf(d: dict[str, Any]) -> dict[str, Any]:
    act = d.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh"):
        raise CourseInputError(f"unsupported activation_function {act!r}: the course GPT uses gelu_new")
    drops = {d.get(k, 0.0) for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
    return dict(
        vocab_size=d["vocab_size"], n_positions=d["n_positions"], n_embd=d["n_embd"], n_layer=d["n_layer"],
        n_head=d["n_head"], dropout=float(max(drops)), layer_norm_epsilon=float(d.get("layer_norm_epsilon", 1e-5)),
        tie_word_embeddings=bool(d.get("tie_word_embeddings", True)), n_inner=d.get("n_inner"),
    )


GPT2 = Architecture(
    hf_class="GPT2LMHeadModel", model_type="gpt2",
    fits=lambda c: (c.norm, c.position, c.mlp, c.bias) == ("layernorm", "learned", "gelu", True)
    and c.kv_heads == c.n_head,
    config_to_hf=_gpt2_config_to_hf, config_from_hf=_gpt2_config_from_hf,
    layers="transformer.h", base_prefix="transformer.",
    transposed=CONV1D_WEIGHTS,  # GPT-2's names are the course's: no renaming
)


# --------------------------------------------------------------------------- Llama
def _llama_config_to_hf(c: Shape, **kwargs: Any) -> Any:
    from transformers import LlamaConfig

    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        kwargs.setdefault(key, None)  # Llama's defaults (1, 2) name tokens of its own vocabulary
    return LlamaConfig(
        vocab_size=c.vocab_size, hidden_size=c.n_embd, intermediate_size=c.mlp_width,
        num_hidden_layers=c.n_layer, num_attention_heads=c.n_head, num_key_value_heads=c.kv_heads,
        head_dim=c.head_size, hidden_act="silu", max_position_embeddings=c.n_positions,
        rms_norm_eps=c.layer_norm_epsilon, rope_theta=c.rope_theta,  # transformers 5 moves it into rope_parameters
        attention_bias=c.bias, mlp_bias=c.bias, attention_dropout=c.dropout,
        tie_word_embeddings=c.tie_word_embeddings, **kwargs,
    )


def _llama_config_from_hf(d: dict[str, Any]) -> dict[str, Any]:
    if d.get("hidden_act", "silu") != "silu":
        raise CourseInputError(f"unsupported hidden_act {d['hidden_act']!r}: the course SwiGLU uses silu")
    # transformers 5 keeps rope_theta in rope_parameters; 4.x at the top level, scaling in rope_scaling
    rope = d.get("rope_parameters") or d.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) != "default":
        raise CourseInputError(f"unsupported RoPE scaling {rope!r}: the course uses plain (default) RoPE")
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
    return dict(
        vocab_size=d["vocab_size"], n_positions=d["max_position_embeddings"], n_embd=d["hidden_size"],
        n_layer=d["num_hidden_layers"], n_head=heads, dropout=float(d.get("attention_dropout", 0.0) or 0.0),
        layer_norm_epsilon=float(d.get("rms_norm_eps", 1e-6)), n_kv_head=None if kv == heads else kv,
        n_inner=d["intermediate_size"], rope_theta=float(rope.get("rope_theta", d.get("rope_theta", 10000.0))),
        norm="rmsnorm", position="rope", mlp="swiglu", bias=bool(d.get("attention_bias", False)),
        tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
    )


LLAMA = Architecture(
    hf_class="LlamaForCausalLM", model_type="llama",
    fits=lambda c: (c.norm, c.position, c.mlp) == ("rmsnorm", "rope", "swiglu"),
    config_to_hf=_llama_config_to_hf, config_from_hf=_llama_config_from_hf,
    layers="model.layers", base_prefix="model.",
    top={
        "transformer.wte.weight": "model.embed_tokens.weight",
        "transformer.ln_f.weight": "model.norm.weight",
        "lm_head.weight": "lm_head.weight",
    },
    block={
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
    },
    qkv=("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"),
)

ARCHITECTURES: dict[str, Architecture] = {a.model_type: a for a in (GPT2, LLAMA)}
"""Every architecture the course converts, by `transformers`' ``model_type``."""


# --------------------------------------------------------------------------- configs
def architecture_of(config: Shape) -> Architecture | None:
    """The architecture whose switches `config` has, or None for a course-only mix."""
    return next((a for a in ARCHITECTURES.values() if a.fits(config)), None)


def require_architecture(config: Shape) -> Architecture:
    """`architecture_of(config)`, or a CourseInputError naming the switches."""
    arch = architecture_of(config)
    if arch is None:
        switches = {k: getattr(config, k) for k in ("norm", "position", "mlp", "bias", "n_kv_head")}
        raise CourseInputError(
            f"no transformers model has this mix of switches {switches}: GPT-2 needs them all off, "
            "Llama needs norm='rmsnorm', position='rope' and mlp='swiglu' together"
        )
    return arch


def config_to_hf(config: Shape, **kwargs: Any) -> Any:
    """The `transformers` config (GPT2Config, LlamaConfig, ...) of `config`; kwargs are passed through."""
    return require_architecture(config).config_to_hf(config, **kwargs)


def config_fields_from_hf(hf_config: Any) -> dict[str, Any]:
    """GPTConfig's fields for a `transformers` config (or its dict, or a config.json's contents)."""
    d = hf_config if isinstance(hf_config, dict) else hf_config.to_dict()
    model_type = d.get("model_type", "gpt2")  # a GPT-2 config.json written by hand may lack it
    if model_type not in ARCHITECTURES:
        raise CourseInputError(
            f"model_type {model_type!r} is not one the course converts; it reads {', '.join(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[model_type].config_from_hf(d)
    except KeyError as e:
        raise CourseInputError(f"the {model_type} config has no {e.args[0]!r}; is it a complete config.json?") from None


# --------------------------------------------------------------------------- weights
def to_hf_state_dict(model: ConfiguredModel) -> StateDict:
    """`model`'s weights named and shaped as its `transformers` class stores them."""
    cfg = model.config
    arch = require_architecture(cfg)
    kv = cfg.kv_heads * cfg.head_size
    out: StateDict = {}
    for name, t in model.state_dict().items():
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue  # tied to transformer.wte.weight
        if name in arch.top or not name.startswith("transformer.h."):
            out[arch.top.get(name, name)] = t.contiguous()
            continue
        _, _, i, inner = name.split(".", 3)  # transformer.h.{i}.{inner}
        if arch.qkv and inner.startswith("attn.c_attn."):
            kind = inner.rsplit(".", 1)[1]  # weight or bias
            for part, piece in zip(arch.qkv, t.split([cfg.n_embd, kv, kv], dim=0)):  # q (C, ..), k v (kv, ..)
                out[f"{arch.layers}.{i}.{part}.{kind}"] = piece.contiguous()
            continue
        t = t.t() if inner in arch.transposed else t
        out[f"{arch.layers}.{i}.{arch.block.get(inner, inner)}"] = t.contiguous()
    return out


def from_hf_names(arch: Architecture, sd: StateDict) -> StateDict:
    """Their names -> ours, the q, k, v pieces stacked into c_attn and transposed weights turned back.

    Names the table does not know pass through unchanged (then reported as unexpected).
    """
    top = {theirs: ours for ours, theirs in arch.top.items()}
    block = {theirs: ours for ours, theirs in arch.block.items()}
    head = arch.layers.split(".")
    out: StateDict = {}
    qkv: dict[tuple[str, str], StateDict] = {}
    for name, t in sd.items():
        parts = name.split(".", len(head) + 1)
        if name in top or len(parts) != len(head) + 2 or parts[: len(head)] != head:
            out[top.get(name, name)] = t
            continue
        i, inner = parts[-2], parts[-1]
        part, _, kind = inner.rpartition(".")
        if arch.qkv and part in arch.qkv:
            qkv.setdefault((i, kind), {})[part] = t
            continue
        ours = block.get(inner, inner)
        out[f"transformer.h.{i}.{ours}"] = t.t() if ours in arch.transposed and t.dim() == 2 else t
    for (i, kind), pieces in qkv.items():
        if arch.qkv and len(pieces) == 3:
            out[f"transformer.h.{i}.attn.c_attn.{kind}"] = torch.cat([pieces[p] for p in arch.qkv], dim=0)
        else:  # an incomplete set: left under their names, so each is reported
            out.update({f"{arch.layers}.{i}.{p}.{kind}": t for p, t in pieces.items()})
    return out


def load_hf_state_dict(model: nn.Module, sd: StateDict) -> None:
    """Load weights in `transformers`' names and shapes into `model`; every mismatch is listed by name."""
    cfg = model.config
    sd = from_hf_names(require_architecture(cfg), sd)
    ours = model.state_dict()
    converted, missing, mismatched = {}, [], []
    for name, mine in ours.items():
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        if name not in sd:
            missing.append(name)
            continue
        t = sd[name]
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


# --------------------------------------------------------------------------- models and folders
def to_hf(model: nn.Module, attn_implementation: str | None = "eager") -> Any:
    """A `transformers` model of `model`'s architecture holding its weights."""
    import transformers

    arch = require_architecture(model.config)
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    hf = getattr(transformers, arch.hf_class)(config_to_hf(model.config, **kwargs))
    missing, unexpected = hf.load_state_dict(to_hf_state_dict(model), strict=False)
    leftover = [k for k in missing if not ignored_state_key(k)]
    if leftover or unexpected:  # pragma: no cover - would be a conversion bug
        raise RuntimeError(f"to_hf: missing {leftover}, unexpected {unexpected}")
    hf.tie_weights()
    first = next(model.parameters())
    return hf.to(first.device).train(model.training)


def load_hf_model(name_or_dir: str | os.PathLike) -> Any:
    """A `transformers` causal LM from a hub name or a folder (its config says which class)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(name_or_dir))


def save_pretrained(model: nn.Module, save_directory: str | os.PathLike) -> Path:
    """Write a Hugging Face model folder (config.json + model.safetensors) for `model`."""
    from safetensors.torch import save_file

    d = Path(save_directory)
    d.mkdir(parents=True, exist_ok=True)
    arch = require_architecture(model.config)
    config_to_hf(model.config, architectures=[arch.hf_class]).save_pretrained(d)
    sd = {k: v.detach().cpu() for k, v in to_hf_state_dict(model).items()}
    save_file(sd, d / "model.safetensors", metadata={"format": "pt"})
    usual_permissions(d / "model.safetensors")  # safetensors writes it owner-only (0o600)
    return d


def read_pretrained(folder: str | os.PathLike) -> tuple[dict[str, Any], StateDict]:
    """(GPTConfig fields, weights in `transformers`' names) of a model folder.

    A missing, damaged or truncated config.json or weights file is one CourseInputError line
    naming the file.
    """
    d = Path(folder)
    config_file = d / "config.json"
    if not config_file.is_file():
        raise CourseInputError(f"{d} has no config.json; is it a model folder?")
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CourseInputError(f"{config_file} is not valid JSON ({e}); the folder is damaged: save it again") from None
    if not isinstance(raw, dict):
        raise CourseInputError(f"{config_file} holds a JSON {type(raw).__name__}, not a model config")
    fields = config_fields_from_hf(raw)
    sd = _read_weights(d)
    arch = ARCHITECTURES[raw.get("model_type", "gpt2")]
    if not any(k.startswith(arch.base_prefix) for k in sd):  # saved from the base model (no head)
        sd = {arch.base_prefix + k: v for k, v in sd.items()}
    return fields, {k: v.float() for k, v in sd.items()}


def _read_weights(d: Path) -> StateDict:
    safetensors_file, bin_file = d / "model.safetensors", d / "pytorch_model.bin"
    try:
        if safetensors_file.is_file():
            from safetensors.torch import load_file

            return load_file(safetensors_file)
        if bin_file.is_file():
            return torch.load(bin_file, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - safetensors, pickle and zip each raise their own kind
        name = safetensors_file if safetensors_file.is_file() else bin_file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise CourseInputError(f"{name} could not be read ({first}); the file is damaged or truncated: "
                               "save or download it again") from None
    raise CourseInputError(f"{d} holds no model.safetensors (or pytorch_model.bin)")
