"""Low-rank adapters (LoRA): fine-tune a frozen model through a small update B @ A.

LoRA (Hu et al., 2021, "LoRA: Low-Rank Adaptation of Large Language Models",
https://arxiv.org/abs/2106.09685) keeps a pretrained weight W (out, in) frozen and
learns a low-rank change to it:

    y = x W^T + b + (alpha / r) * x A^T B^T        A: (r, in), B: (out, r), r << min(in, out)

A starts random and B at zero, so training starts from exactly the pretrained model.
Only A and B are trained: for GPT-2's `c_attn` (768 -> 2304) with r = 8 that is
24,576 numbers per layer instead of 1.77 million. After training the update can be
added into W ("merged"), so inference costs nothing extra; subtracting it again
("unmerging") gives the original weights back.

The layout follows Hugging Face `peft` (https://github.com/huggingface/peft) so the
two can be compared number for number: the same `lora_A`/`lora_B` shapes, scaling
alpha / r, Kaiming-uniform A and zero B, dropout on the adapter's input only, and
adapter files (`adapter_model.safetensors` + `adapter_config.json`) that
`peft.PeftModel.from_pretrained(GPT.to_hf(), folder)` loads. GPT-2's Hugging Face
weights are Conv1D, stored (in, out), hence `fan_in_fan_out=True` in that config.
`save_lora` saves any layer that holds `lora_A` and `lora_B` (`adapter_layers`), so the
LoRA layer a learner writes in notebook 09 is saved, and checked against peft, alike.

Introduced in notebooks/09_fine_tuning.ipynb.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from .errors import CourseInputError
from .io import usual_permissions

__all__ = [
    "LoRALinear",
    "apply_lora",
    "merge_lora",
    "unmerge_lora",
    "remove_lora",
    "lora_layers",
    "adapter_layers",
    "AdapterLayer",
    "lora_state_dict",
    "trainable_parameters",
    "TrainableReport",
    "save_lora",
    "load_lora",
    "ADAPTER_WEIGHTS",
    "ADAPTER_CONFIG",
]

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
_PEFT_PREFIX = "base_model.model."


class LoRALinear(nn.Linear):
    """An `nn.Linear` with a trainable low-rank update; the base weight and bias are frozen.

    It *is* a Linear (same `weight` and `bias`, same state-dict names), plus
    `lora_A` (r, in) and `lora_B` (out, r). `merge()` adds the update into `weight`,
    `unmerge()` takes it out again.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        r: int = 8,
        alpha: float = 16,
        dropout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        _check_hparams(r, alpha, dropout)
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.r = r
        self.alpha = alpha
        self.scaling = alpha / r
        self.lora_A = nn.Parameter(torch.empty(r, in_features, device=device, dtype=dtype))
        self.lora_B = nn.Parameter(torch.empty(out_features, r, device=device, dtype=dtype))
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self.reset_lora_parameters()
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)

    def reset_lora_parameters(self) -> None:
        """A ~ Kaiming uniform (as nn.Linear and peft), B = 0: the update starts at zero."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    @classmethod
    def from_linear(cls, linear: nn.Linear, r: int = 8, alpha: float = 16, dropout: float = 0.0) -> LoRALinear:
        """Wrap an existing Linear: its weight and bias tensors are shared, not copied."""
        w = linear.weight
        new = cls(linear.in_features, linear.out_features, bias=linear.bias is not None,
                  r=r, alpha=alpha, dropout=dropout, device=w.device, dtype=w.dtype)
        new.weight = linear.weight
        new.bias = linear.bias
        new.weight.requires_grad_(False)
        if new.bias is not None:
            new.bias.requires_grad_(False)
        new.train(linear.training)
        return new

    def delta_weight(self) -> torch.Tensor:
        """The update (alpha / r) * B @ A, shaped like `weight`: (out, in)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)  # (..., out) the frozen path (with the update inside when merged)
        if self.merged:
            return y
        h = self.lora_dropout(x) @ self.lora_A.t()  # (..., r) the bottleneck
        return y + (h @ self.lora_B.t()) * self.scaling  # (..., out)

    @torch.no_grad()
    def merge(self) -> None:
        """W <- W + (alpha / r) B A; the forward pass then skips the adapter."""
        if not self.merged:
            self.weight += self.delta_weight().to(self.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W <- W - (alpha / r) B A: the inverse of `merge`."""
        if self.merged:
            self.weight -= self.delta_weight().to(self.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, r={self.r}, alpha={self.alpha}, merged={self.merged}"


def _check_hparams(r: int, alpha: float, dropout: float) -> None:
    if not isinstance(r, int) or isinstance(r, bool) or r <= 0:
        raise CourseInputError(f"LoRA rank r must be a positive integer (1, 2, 4, 8, ...), got r={r!r}")
    if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not alpha > 0:
        raise CourseInputError(f"LoRA alpha must be a positive number (often 2 * r), got alpha={alpha!r}")
    if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise CourseInputError(f"LoRA dropout must be in [0, 1), got dropout={dropout!r}")


def _matches(name: str, target: str) -> bool:
    """peft's rule: a target matches a module whose full name is it or ends with '.' + it."""
    return name == target or name.endswith("." + target)


def _linear_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and n]


def _leaf_names(names: Iterable[str]) -> list[str]:
    return sorted({n.rsplit(".", 1)[-1] for n in names})


def _shared_weight_ids(model: nn.Module) -> set[int]:
    """ids of parameters that more than one module holds (tied weights such as lm_head/wte)."""
    seen: dict[int, int] = {}
    for m in model.modules():
        for p in m.parameters(recurse=False):
            seen[id(p)] = seen.get(id(p), 0) + 1
    return {i for i, n in seen.items() if n > 1}


def apply_lora(
    model: nn.Module,
    target_modules: str | Iterable[str] = ("c_attn",),
    r: int = 8,
    alpha: float = 16,
    dropout: float = 0.0,
) -> nn.Module:
    """Freeze `model` and put a `LoRALinear` in place of every Linear named in `target_modules`.

    A target matches a module whose full name equals it or ends with "." + it
    ("c_attn" matches every `transformer.h.{i}.attn.c_attn`), as in `peft`. Only the
    adapters train afterwards. A target that matches nothing, or matches something
    that is not an `nn.Linear`, raises `CourseInputError` listing the names that
    exist. Changes `model` in place and returns it.
    """
    _check_hparams(r, alpha, dropout)
    targets = [target_modules] if isinstance(target_modules, str) else list(target_modules)
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise CourseInputError(
            f"target_modules must be one or more module names, got {target_modules!r}; "
            f"Linear layers here: {', '.join(_leaf_names(_linear_names(model)))}"
        )
    modules = dict(model.named_modules())
    linears = _linear_names(model)
    chosen: list[str] = []
    for t in targets:
        hits = [n for n in modules if n and _matches(n, t)]
        if not hits:
            raise CourseInputError(
                f"target module {t!r} matches no module of {type(model).__name__}. "
                f"Linear layers (the names LoRA can target): {', '.join(_leaf_names(linears))}; "
                f"for example {', '.join(linears[:4])}"
            )
        bad = [n for n in hits if not isinstance(modules[n], nn.Linear)]
        if bad:
            kinds = ", ".join(f"{n} ({type(modules[n]).__name__})" for n in bad[:4])
            raise CourseInputError(
                f"target module {t!r} matches modules that are not nn.Linear: {kinds}. "
                f"LoRA here wraps Linear layers only: {', '.join(_leaf_names(linears))}"
            )
        already = [n for n in hits if isinstance(modules[n], LoRALinear)]
        if already:
            raise CourseInputError(
                f"{already[0]} already has a LoRA adapter; call remove_lora(model) first"
            )
        chosen += [n for n in hits if n not in chosen]
    tied = _shared_weight_ids(model)
    for n in chosen:
        if id(modules[n].weight) in tied:
            raise CourseInputError(
                f"{n}'s weight is tied to another module (GPT-2's lm_head shares the token "
                "embedding), so merging an adapter into it would change both; target "
                f"another layer: {', '.join(_leaf_names(x for x in linears if id(modules[x].weight) not in tied))}"
            )

    for p in model.parameters():
        p.requires_grad_(False)
    for n in chosen:
        parent_name, _, child = n.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear.from_linear(modules[n], r=r, alpha=alpha, dropout=dropout))
    model.lora_config = {"r": r, "alpha": alpha, "dropout": dropout, "target_modules": targets}
    return model


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Every LoRALinear in `model`, by module name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


class AdapterLayer(Protocol):
    """What `save_lora` reads of an adapted layer: the course's `LoRALinear`, or one written in
    notebook 09 (a module holding `lora_A` (r, in) and `lora_B` (out, r) parameters and its scale)."""

    lora_A: torch.Tensor
    lora_B: torch.Tensor
    scaling: float


def adapter_layers(model: nn.Module) -> dict[str, AdapterLayer]:
    """Every module of `model` that holds a LoRA adapter (`lora_A` and `lora_B` parameters), by name:
    the course's `LoRALinear` and any layer built the same way."""
    return {n: m for n, m in model.named_modules()  # type: ignore[misc]
            if isinstance(getattr(m, "lora_A", None), nn.Parameter)
            and isinstance(getattr(m, "lora_B", None), nn.Parameter)}


def _require_adapters(model: nn.Module, what: str) -> dict[str, AdapterLayer]:
    layers = adapter_layers(model)
    if not layers:
        raise CourseInputError(f"{what}: the model has no LoRA adapters; call apply_lora(model) first")
    return layers


def _require_lora(model: nn.Module, what: str) -> dict[str, LoRALinear]:
    layers = lora_layers(model)
    if not layers:
        raise CourseInputError(f"{what}: the model has no LoRA adapters; call apply_lora(model) first")
    return layers


def merge_lora(model: nn.Module) -> nn.Module:
    """Add every adapter's update into its base weight (W += alpha/r B A); the inverse is `unmerge_lora`.
    """
    for layer in _require_lora(model, "merge_lora").values():
        layer.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Subtract every merged update again, giving back the pretrained weights (up to rounding)."""
    for layer in _require_lora(model, "unmerge_lora").values():
        layer.unmerge()
    return model


def remove_lora(model: nn.Module, merge: bool = True) -> nn.Module:
    """Replace every LoRALinear by a plain `nn.Linear` (merged first unless `merge=False`).

    The result has the original module layout, so `GPT.to_hf()` and
    `GPT.save_pretrained()` work on it. Parameters are left trainable again.
    """
    for name, layer in _require_lora(model, "remove_lora").items():
        if merge:
            layer.merge()
        else:
            layer.unmerge()
        plain = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                          device=layer.weight.device, dtype=layer.weight.dtype)
        plain.weight, plain.bias = layer.weight, layer.bias
        plain.train(layer.training)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, plain)
    for p in model.parameters():
        p.requires_grad_(True)
    if hasattr(model, "lora_config"):
        del model.lora_config
    return model


@dataclass
class TrainableReport:
    """How many parameters train, out of how many (each shared tensor counted once)."""

    trainable: int
    total: int

    @property
    def percent(self) -> float:
        return 100.0 * self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:  # the same line as peft's print_trainable_parameters()
        return (f"trainable params: {self.trainable:,d} || all params: {self.total:,d} "
                f"|| trainable%: {self.percent:.4f}")


def trainable_parameters(model: nn.Module) -> TrainableReport:
    """Count trainable and total parameters (tied weights once), like peft's report."""
    params = list(model.parameters())  # parameters() already yields a shared tensor once
    return TrainableReport(sum(p.numel() for p in params if p.requires_grad),
                           sum(p.numel() for p in params))


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter weights alone, named as peft names them for `GPT.to_hf()`.

    Keys look like "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight";
    the shapes are peft's too: lora_A (r, in), lora_B (out, r). Any `adapter_layers` counts,
    so the layers a learner writes in notebook 09 are saved alike.
    """
    out = {}
    for name, layer in _require_adapters(model, "lora_state_dict").items():
        out[f"{_PEFT_PREFIX}{name}.lora_A.weight"] = layer.lora_A.detach()
        out[f"{_PEFT_PREFIX}{name}.lora_B.weight"] = layer.lora_B.detach()
    return out


def _adapter_config(model: nn.Module) -> dict:
    layers = _require_adapters(model, "save_lora")
    first = next(iter(layers.values()))
    r = int(first.lora_A.shape[0])
    alpha = getattr(first, "alpha", first.scaling * r)
    dropout = getattr(getattr(first, "lora_dropout", None), "p", 0.0)
    cfg = getattr(model, "lora_config", None) or {}
    return {
        "peft_type": "LORA",
        "task_type": None,
        "base_model_name_or_path": None,
        "r": r,
        "lora_alpha": alpha,
        "lora_dropout": cfg.get("dropout", dropout),
        "target_modules": cfg.get("target_modules") or _leaf_names(layers),
        "fan_in_fan_out": True,  # Hugging Face GPT-2 stores these weights as Conv1D (in, out)
        "bias": "none",
        "inference_mode": True,
        "init_lora_weights": True,
    }


def save_lora(model: nn.Module, directory: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write only the adapters: `adapter_model.safetensors` + `adapter_config.json`.

    The folder is peft's format: `peft.PeftModel.from_pretrained(gpt.to_hf(), folder)`
    loads it. An existing adapter there is refused unless `overwrite=True`.
    """
    from safetensors.torch import save_file

    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise CourseInputError(f"save_lora: {d} exists and is a file, not a folder")
    weights = d / ADAPTER_WEIGHTS
    if weights.exists() and not overwrite:
        raise CourseInputError(
            f"save_lora: {weights} already exists; nothing was changed. "
            "Pass overwrite=True to replace it, or choose another folder."
        )
    config = _adapter_config(model)
    sd = {k: v.detach().cpu().contiguous() for k, v in lora_state_dict(model).items()}
    d.mkdir(parents=True, exist_ok=True)
    save_file(sd, weights, metadata={"format": "pt"})
    usual_permissions(weights)  # safetensors writes it owner-only (0o600)
    (d / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return d


def load_lora(model: nn.Module, directory: str | os.PathLike) -> nn.Module:
    """Load adapters saved by `save_lora` (or by peft for a GPT-2 export) into `model`.

    When `model` has no adapters yet, `apply_lora` is called with the saved rank,
    alpha and targets first. Missing or extra adapter tensors, or wrong shapes, are
    named in a `CourseInputError`.
    """
    from safetensors.torch import load_file

    d = Path(directory)
    weights, cfg_path = d / ADAPTER_WEIGHTS, d / ADAPTER_CONFIG
    for p in (weights, cfg_path):
        if not p.is_file():
            raise CourseInputError(f"load_lora: {p} not found; expected a folder written by save_lora")
    cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    if cfg.get("peft_type", "LORA") != "LORA":
        raise CourseInputError(f"load_lora: {cfg_path} is a {cfg.get('peft_type')} adapter, not LoRA")
    if not lora_layers(model):
        apply_lora(model, cfg["target_modules"], r=int(cfg["r"]), alpha=cfg["lora_alpha"],
                   dropout=float(cfg.get("lora_dropout", 0.0)))
    sd = load_file(weights)
    sd = {k.replace(".default.", "."): v for k, v in sd.items()}  # tolerate adapter-named keys
    layers = lora_layers(model)
    expected = {}
    for name, layer in layers.items():
        expected[f"{_PEFT_PREFIX}{name}.lora_A.weight"] = layer.lora_A
        expected[f"{_PEFT_PREFIX}{name}.lora_B.weight"] = layer.lora_B
    missing = sorted(set(expected) - set(sd))
    extra = sorted(set(sd) - set(expected))
    wrong = [f"{k}: file {tuple(sd[k].shape)}, model {tuple(p.shape)}"
             for k, p in expected.items() if k in sd and sd[k].shape != p.shape]
    if missing or extra or wrong:
        parts = ([f"missing {', '.join(missing[:4])}"] if missing else []) + \
                ([f"unexpected {', '.join(extra[:4])}"] if extra else []) + \
                ([f"shapes differ: {'; '.join(wrong[:4])}"] if wrong else [])
        raise CourseInputError(f"load_lora: {weights} does not fit this model: " + " | ".join(parts))
    if any(layer.merged for layer in layers.values()):
        raise CourseInputError("load_lora: the adapters are merged; unmerge_lora(model) before loading others")
    with torch.no_grad():
        for k, p in expected.items():
            p.copy_(sd[k].to(p.device, p.dtype))
    return model
