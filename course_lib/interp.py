"""Interpretability for notebook 08: read a model's attention, score its heads, knock heads out,
and read what each layer would predict (the logit lens). Plain functions; `course_lib.viz` draws.

Every tool works on a model with GPT-2's module names (the course `GPT`, or a `transformers`
GPT-2): ``transformer.h[i].attn.c_proj``, ``transformer.ln_f``, ``lm_head``.

- **Attention out of a model**: `attention_batch` (B, L, H, T, T) and `attention_maps` (one sequence).
- **Head-role scores**, plain functions of attention ``(..., T, T)`` (rows are queries): previous
  token (Elhage et al., "A Mathematical Framework for Transformer Circuits", 2021), first token /
  attention sink (Xiao et al., 2023), induction on a random sequence repeated twice (Olsson et
  al., 2022, https://arxiv.org/abs/2209.11895), entropy. `head_roles` gathers them per head;
  `induction_scores` and `previous_token_scores` average them over a batch, ``(L, H)``.
- **Ablation**: `ablate_heads` is a context manager that zeroes (or mean-ablates) the output
  of chosen heads with a forward pre-hook on ``attn.c_proj``: its input is ``(B, T, C)`` with
  the heads side by side, ``head_size`` channels each, so one head is one slice.
  `repeated_half_loss` measures what the heads are for: the loss on the second copy.
- **Logit lens** (nostalgebraist, 2020): `logit_lens` applies the final LayerNorm and the
  unembedding to the residual stream after every layer; its last row equals the model's logits.
- **Direct logit attribution**: `direct_logit_attribution` splits a logit into what each head
  writes straight into the residual stream, the final LayerNorm's scale held fixed (with the
  other parts, embeddings, MLPs and biases, the shares add up to the logit exactly).

The notebook has the learner write `logit_lens`, a head-ablation hook and
`direct_logit_attribution` before importing this module, then compares them with these.

Introduced in notebooks/08_attention_visualization.ipynb.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from . import runtime
from .errors import CourseInputError
from .protocols import CausalLM

__all__ = [
    "attention_batch", "attention_maps", "repeated_tokens", "repeated_random_tokens",
    "previous_token_score", "first_token_score", "induction_score", "attention_entropy",
    "induction_scores", "previous_token_scores",
    "HeadRole", "ROLE_NAMES", "head_roles", "head_roles_from_attentions", "top_heads",
    "ranked_heads", "head_name", "random_head",
    "zero_head", "mean_ablate_head", "ablate_heads", "repeated_half_loss", "ablation_losses",
    "ablation_scan",
    "logit_lens", "lens_top_tokens", "lens_accuracy",
    "direct_logit_attribution",
]

Head = tuple[int, int]  # (layer, head)
ROLE_NAMES = ("previous_token", "first_token", "induction", "entropy")


# --------------------------------------------------------------------------- attention out of a model
def _is_hf(model: Any) -> bool:
    return hasattr(model, "config") and hasattr(model.config, "model_type")


def _ensure_eager(model: Any) -> None:
    """`transformers` returns no attention weights under sdpa/flash: switch the model to eager."""
    impl = getattr(model.config, "_attn_implementation", None)
    if impl in (None, "eager"):
        return
    if hasattr(model, "set_attn_implementation"):  # transformers >= 4.48
        model.set_attn_implementation("eager")
    else:  # older 4.4x read it from the config at forward time
        model.config._attn_implementation = "eager"


@torch.no_grad()
def attention_batch(model: CausalLM, ids: torch.Tensor) -> torch.Tensor:
    """Every attention weight of `model` on a batch: float32 CPU tensor (B, L, H, T, T).

    Works for the course `GPT` (``output_attentions=True``) and for a `transformers`
    GPT-2 style model (switched to eager attention when needed: `transformers` 5 returns
    no weights under sdpa).
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids[None]
    if _is_hf(model):
        _ensure_eager(model)
    was_training = model.training
    model.eval()
    try:
        with runtime.threads_for(model):  # a small model on the CPU: one thread (see there why)
            out = model(ids.to(next(model.parameters()).device), output_attentions=True)
    finally:
        model.train(was_training)
    atts = out.attentions if hasattr(out, "attentions") else out[-1]
    if atts is None or any(a is None for a in atts):
        raise CourseInputError(
            "the model returned no attention weights; load it with attn_implementation='eager' "
            "(transformers returns none under sdpa or flash attention)"
        )
    return torch.stack([a.float().cpu() for a in atts], dim=1)  # (B, L, H, T, T)


def attention_maps(model: CausalLM, input_ids: torch.Tensor | list[int]) -> torch.Tensor:
    """All attention weights of `model` on one sequence: a float32 CPU tensor (L, H, T, T)
    (`attention_batch` for a batch of one).
    """
    ids = torch.as_tensor(input_ids, dtype=torch.long)
    if ids.dim() == 1:
        ids = ids[None]  # (1, T)
    if ids.dim() != 2 or ids.size(0) != 1:
        raise CourseInputError(f"attention_maps: give one sequence of token ids, got shape {tuple(ids.shape)}")
    if ids.numel() == 0:
        raise CourseInputError("attention_maps: the sequence is empty; give at least one token")
    return attention_batch(model, ids)[0]  # (L, H, T, T)


# --------------------------------------------------------------------------- inputs
def repeated_tokens(vocab_size: int, period: int, batch: int = 1, seed: int | None = 0, *,
                    generator: torch.Generator | None = None, bos: int | None = None) -> torch.Tensor:
    """(batch, prefix + 2 * period) ids: `period` random tokens, then the same again.

    Drawn from `generator`, else from a generator seeded with `seed`. With `bos` (GPT-2's
    ``<|endoftext|>``, id 50256) each row starts with that token (prefix 1): GPT-2 parks spare
    attention on position 0 and behaves oddly without it.
    """
    if vocab_size < 2 or period < 2 or batch < 1:
        raise CourseInputError(f"repeated_tokens: need vocab_size >= 2, period >= 2, batch >= 1; got "
                               f"{vocab_size}, {period}, {batch}")
    if generator is None:
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
    first = torch.randint(0, vocab_size, (batch, period), generator=generator)
    ids = torch.cat([first, first], dim=1)  # (B, 2p)
    if bos is not None:
        ids = torch.cat([torch.full((batch, 1), bos, dtype=torch.long), ids], dim=1)  # (B, 1 + 2p)
    return ids


repeated_random_tokens = repeated_tokens  # the name notebook 08's exercise cells use (through course_lib.viz)


# --------------------------------------------------------------------------- scores (plain functions of attention)
def _check_square(att: torch.Tensor, name: str) -> None:
    if att.dim() < 2 or att.size(-1) != att.size(-2):
        raise CourseInputError(f"{name}: expected attention of shape (..., T, T), got {tuple(att.shape)}")


def previous_token_score(att: torch.Tensor) -> torch.Tensor:
    """Mean attention from each query i >= 1 to key i - 1: shape ``att.shape[:-2]``."""
    _check_square(att, "previous_token_score")
    if att.size(-1) < 2:
        return torch.zeros(att.shape[:-2])
    return att.float().diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)  # (...,)


def first_token_score(att: torch.Tensor) -> torch.Tensor:
    """Mean attention from each query i >= 1 to key 0 (the "attention sink").
    """
    _check_square(att, "first_token_score")
    if att.size(-1) < 2:
        return torch.zeros(att.shape[:-2])
    return att.float()[..., 1:, 0].mean(-1)  # (...,)


def induction_score(att: torch.Tensor, period: int) -> torch.Tensor:
    """On a sequence whose second part repeats the first `period` tokens: mean attention
    from query t (t >= period) to key t - period + 1, the token after the earlier copy.
    """
    _check_square(att, "induction_score")
    T = att.size(-1)
    if not 1 <= period < T - 1:
        raise CourseInputError(f"induction_score: period must be in 1 .. {T - 2} for {T} tokens, got {period}")
    # query t looks at key t - period + 1: the diagonal at offset -(period - 1), rows t >= period
    diag = att.float().diagonal(offset=-(period - 1), dim1=-2, dim2=-1)  # rows period-1 .. T-1
    return diag[..., 1:].mean(-1)  # (...,)


def attention_entropy(att: torch.Tensor) -> torch.Tensor:
    """Mean entropy (nats) of the attention rows; 0 when each query looks at one key."""
    _check_square(att, "attention_entropy")
    p = att.float()
    ent = -(p * torch.log(p.clamp_min(1e-12))).sum(-1)  # (..., T)
    return ent.mean(-1)


def induction_scores(model: Any, period: int = 20, batch: int = 8, *, seed: int = 0,
                     bos: int | None = None) -> torch.Tensor:
    """Induction score of every head, (L, H): on `batch` rows of `period` random tokens
    repeated twice, the mean attention from each token of the second copy to the token
    that followed its earlier occurrence. 1.0 = a perfect induction head.
    """
    ids = repeated_tokens(int(model.config.vocab_size), period, batch, seed=seed, bos=bos)
    prefix = ids.size(1) - 2 * period
    att = attention_batch(model, ids)[..., prefix:, prefix:]  # the copies only: (B, L, H, 2p, 2p)
    return induction_score(att, period).mean(0)  # (L, H)


def previous_token_scores(model: Any, ids: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """Previous-token score of every head, (L, H): mean attention from token i to token i - 1,
    on `ids` (one sequence, or a batch (B, T) averaged).
    """
    return previous_token_score(attention_batch(model, torch.as_tensor(ids))).mean(0)  # (L, H)


# --------------------------------------------------------------------------- the role table
@dataclass
class HeadRole:
    """The role scores of one head."""

    layer: int
    head: int
    previous_token: float
    first_token: float
    induction: float
    entropy: float

    @property
    def name(self) -> str:
        return f"L{self.layer}H{self.head}"


def head_roles_from_attentions(att: torch.Tensor, induction_att: torch.Tensor | None = None,
                               period: int | None = None) -> list[HeadRole]:
    """Role scores for every head from attention maps (L, H, T, T).

    `att` (on text) gives previous-token, first-token and entropy scores;
    `induction_att` (L, H, 2p, 2p), on a random sequence of `period` p repeated twice,
    gives the induction score (NaN when not given).
    """
    if att.dim() != 4:
        raise CourseInputError(f"head_roles: expected attention of shape (L, H, T, T), got {tuple(att.shape)}")
    prev, first, ent = previous_token_score(att), first_token_score(att), attention_entropy(att)  # (L, H)
    if induction_att is not None:
        if period is None:
            period = induction_att.size(-1) // 2
        ind = induction_score(induction_att, period)
    else:
        ind = torch.full(prev.shape, float("nan"))
    L, H = prev.shape
    return [
        HeadRole(i, h, float(prev[i, h]), float(first[i, h]), float(ind[i, h]), float(ent[i, h]))
        for i in range(L) for h in range(H)
    ]


def _vocab_size(model: Any) -> int:
    cfg = model.config
    return int(cfg.vocab_size)


def head_roles(model: Any, input_ids: torch.Tensor | list[int] | None = None, *,
               period: int = 32, seed: int = 0, vocab_low: int | None = None) -> list[HeadRole]:
    """Score every head of `model`: previous-token, first-token (sink), induction, entropy.

    Previous-token, first-token and entropy are measured on `input_ids` (your text);
    when none is given, on the repeated random sequence too. The induction score is
    measured on `period` random tokens repeated twice (ids drawn from
    ``vocab_low .. vocab_size - 1``; default the whole vocabulary).
    """
    V = _vocab_size(model)
    n_pos = int(getattr(model.config, "n_positions", 1024))
    period = min(period, n_pos // 2)
    low = 0 if vocab_low is None else vocab_low
    if not 0 <= low < V - 1:
        raise CourseInputError(f"head_roles: vocab_low must be in 0 .. {V - 2}, got {vocab_low}")
    rep = repeated_random_tokens(V - low, period, seed=seed) + low  # (1, 2p)
    rep_att = attention_maps(model, rep[0])
    text_att = rep_att if input_ids is None else attention_maps(model, input_ids)
    return head_roles_from_attentions(text_att, rep_att, period)


def top_heads(roles: list[HeadRole], by: str = "induction", k: int = 3) -> list[HeadRole]:
    """The `k` heads with the highest score `by` (lowest, for "entropy").
    """
    if by not in ROLE_NAMES:
        raise CourseInputError(f"top_heads: by={by!r} is not one of {', '.join(ROLE_NAMES)}")
    key = (lambda r: getattr(r, by)) if by == "entropy" else (lambda r: -getattr(r, by))
    return sorted((r for r in roles if not math.isnan(getattr(r, by))), key=key)[:k]


def head_name(layer: int, head: int) -> str:
    """"L5H1": layer 5, head 1 (the literature also writes 5.1).
    """
    return f"L{layer}H{head}"


def ranked_heads(scores: torch.Tensor, k: int = 3) -> list[tuple[int, int, float]]:
    """The `k` heads with the highest score in an (L, H) tensor: [(layer, head, score)]."""
    if scores.dim() != 2:
        raise CourseInputError(f"ranked_heads: expected scores of shape (layers, heads), got {tuple(scores.shape)}")
    H = scores.size(1)
    order = torch.argsort(scores.flatten(), descending=True, stable=True)[:k]
    return [(int(i) // H, int(i) % H, float(scores.flatten()[i])) for i in order]


def random_head(n_layer: int, n_head: int, *, exclude: Sequence[Head] = (), seed: int = 0) -> Head:
    """A head drawn at random (seeded) among those not in `exclude`: the control of an ablation."""
    pool = [(lay, h) for lay in range(n_layer) for h in range(n_head) if (lay, h) not in set(exclude)]
    if not pool:
        raise CourseInputError("random_head: every head is excluded")
    return random.Random(seed).choice(pool)


# --------------------------------------------------------------------------- ablation
def _check_head(z: torch.Tensor, head: int, n_head: int) -> int:
    if z.size(-1) % n_head != 0 or not 0 <= head < n_head:
        raise CourseInputError(f"head {head} of {n_head} does not fit {z.size(-1)} channels")
    return z.size(-1) // n_head


def zero_head(z: torch.Tensor, head: int, n_head: int) -> torch.Tensor:
    """A copy of `z` (..., C), the heads side by side, with head `head`'s channels set to 0."""
    hs = _check_head(z, head, n_head)
    out = z.clone()
    out[..., head * hs:(head + 1) * hs] = 0
    return out


def mean_ablate_head(z: torch.Tensor, head: int, n_head: int) -> torch.Tensor:
    """A copy of `z` (B, T, C), the heads side by side, where head `head`'s channels are
    replaced by their mean over the batch and the positions: the head still adds its
    average, but no longer says anything about *this* token.
    """
    hs = _check_head(z, head, n_head)
    out = z.clone()
    part = z[..., head * hs:(head + 1) * hs]  # (B, T, hs)
    out[..., head * hs:(head + 1) * hs] = part.mean(dim=tuple(range(z.dim() - 1)), keepdim=True)
    return out


_ABLATIONS = {"zero": zero_head, "mean": mean_ablate_head}


@contextmanager
def ablate_heads(model: Any, heads: Sequence[Head], how: str = "zero") -> Iterator[Any]:
    """Within the ``with`` block, the output of each (layer, head) in `heads` is removed.

    A forward pre-hook on ``transformer.h[layer].attn.c_proj`` rewrites that projection's
    input, where the heads sit side by side (``how="zero"``: set to zero; ``"mean"``: set to
    its mean over the batch and positions). The hooks are removed on leaving the block.
    """
    if how not in _ABLATIONS:
        raise CourseInputError(f"ablate_heads: how={how!r} is not one of {', '.join(_ABLATIONS)}")
    n_layer, n_head = int(model.config.n_layer), int(model.config.n_head)
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        if not (0 <= layer < n_layer and 0 <= head < n_head):
            raise CourseInputError(f"ablate_heads: head {head_name(layer, head)} is not in a model of "
                                   f"{n_layer} layers x {n_head} heads")
        by_layer.setdefault(layer, []).append(head)
    fn = _ABLATIONS[how]

    def make_hook(hs: list[int]) -> Any:
        def hook(_module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
            z = args[0]
            for h in hs:
                z = fn(z, h, n_head)
            return (z, *args[1:])
        return hook

    handles = [model.transformer.h[layer].attn.c_proj.register_forward_pre_hook(make_hook(hs))
               for layer, hs in by_layer.items()]
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def repeated_half_loss(model: Any, ids: torch.Tensor, period: int) -> float:
    """Mean cross-entropy on the second copy of rows made by `repeated_tokens`: the tokens
    a model can predict only by copying (from the second token of the copy on).
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() != 2 or ids.size(1) < 2 * period:
        raise CourseInputError(
            f"repeated_half_loss: expected (B, T) ids with T >= {2 * period}, got {tuple(ids.shape)}")
    labels = ids.clone()
    labels[:, : ids.size(1) - period + 1] = -100  # the first copy, the prefix and the copy's first token
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with runtime.threads_for(model):  # a small model on the CPU: one thread
            out = model(ids.to(device), labels=labels.to(device))
    finally:
        model.train(was_training)
    return float(out.loss)


def ablation_losses(model: Any, ids: torch.Tensor, period: int, ablations: dict[str, Sequence[Head]],
                    how: str = "zero") -> dict[str, float]:
    """`repeated_half_loss` with nothing ablated ("none") and with each named group of heads
    ablated: {"none": 0.24, "L1H2": 0.45, ...}.
    """
    losses = {"none": repeated_half_loss(model, ids, period)}
    for name, heads in ablations.items():
        with ablate_heads(model, heads, how):
            losses[name] = repeated_half_loss(model, ids, period)
    return losses


def ablation_scan(model: Any, ids: torch.Tensor, period: int, how: str = "zero") -> torch.Tensor:
    """`repeated_half_loss` with each head ablated alone: an (L, H) tensor of losses."""
    L, H = int(model.config.n_layer), int(model.config.n_head)
    out = torch.empty(L, H)
    for layer in range(L):
        for head in range(H):
            with ablate_heads(model, [(layer, head)], how):
                out[layer, head] = repeated_half_loss(model, ids, period)
    return out


# --------------------------------------------------------------------------- logit lens
@torch.no_grad()
def logit_lens(model: Any, ids: torch.Tensor | Sequence[int]) -> torch.Tensor:
    """What each layer would predict next: (L + 1, T, vocab) float32 logits for one sequence.

    Row 0 reads the embeddings, row i the residual stream after block i, each through the
    final LayerNorm and the unembedding. ``hidden_states[-1]`` already went through ``ln_f``,
    so the last row is exactly the model's own logits.
    """
    ids = torch.as_tensor(ids, dtype=torch.long).reshape(1, -1)
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with runtime.threads_for(model):  # a small model on the CPU: one thread
            out = model(ids.to(device), output_hidden_states=True)
            hidden = out.hidden_states  # L + 1 of (1, T, C); the last after ln_f
            ln_f, head = model.transformer.ln_f, model.lm_head
            rows = [head(ln_f(h)) for h in hidden[:-1]] + [head(hidden[-1])]
    finally:
        model.train(was_training)
    return torch.cat(rows).float().cpu()  # (L + 1, T, vocab)


def lens_top_tokens(lens: torch.Tensor, decode: Any = None) -> list[list[str]]:
    """The top prediction of every layer at every position: (L + 1) rows of T strings.
    `decode` turns an id into text (default: the id itself).
    """
    top = lens.argmax(-1)  # (L + 1, T)
    show = decode or str
    return [[show(int(i)) for i in row] for row in top]


def lens_accuracy(lens: torch.Tensor, ids: torch.Tensor | Sequence[int], start: int = 0) -> torch.Tensor:
    """For each layer, the fraction of positions t >= `start` whose top prediction is the
    actual next token ids[t + 1]: (L + 1,).
    """
    ids = torch.as_tensor(ids).reshape(-1)
    T = ids.numel()
    if not 0 <= start < T - 1:
        raise CourseInputError(f"lens_accuracy: start must be in 0 .. {T - 2}, got {start}")
    pred = lens[:, start:T - 1].argmax(-1)  # (L + 1, n)
    return (pred == ids[start + 1:][None]).float().mean(-1)


# --------------------------------------------------------------------------- direct logit attribution
@torch.no_grad()
def direct_logit_attribution(model: Any, ids: torch.Tensor | Sequence[int], token: int) -> torch.Tensor:
    """Each head's direct share of the logit of `token` at the last position of `ids`: (L, H) float32.

    Head h of block l writes c_proj(its channels alone) minus c_proj's bias into the residual
    stream. With the final LayerNorm's scale held at the value it has on this input, the
    LayerNorm is linear: a part v of the stream adds (v - mean(v)) / scale * ln_f.weight to its
    output, and that times the unembedding row of `token` is v's share of the logit. The shares
    of every part (embeddings, heads, c_proj biases, MLPs) plus ln_f.bias times that row add up
    to the logit exactly.
    """
    ids = torch.as_tensor(ids, dtype=torch.long).reshape(1, -1)
    vocab = int(model.config.vocab_size)
    if not 0 <= int(token) < vocab:
        raise CourseInputError(f"direct_logit_attribution: token {token} is not in the vocabulary (0 .. {vocab - 1})")
    L, H = int(model.config.n_layer), int(model.config.n_head)
    ln_f, W_U = model.transformer.ln_f, model.lm_head.weight  # W_U: (vocab, C)
    seen: dict[Any, torch.Tensor] = {}

    def recorder(key: Any) -> Any:
        def hook(_module: Any, args: tuple[Any, ...]) -> None:
            seen[key] = args[0][0, -1]  # (C,) at the last position
        return hook

    handles = [model.transformer.h[i].attn.c_proj.register_forward_pre_hook(recorder(i)) for i in range(L)]
    handles.append(ln_f.register_forward_pre_hook(recorder("stream")))
    was_training = model.training
    model.eval()
    try:
        model(ids.to(W_U.device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    x = seen["stream"].float()
    scale = (x.var(unbiased=False) + ln_f.eps).sqrt()
    direction = ln_f.weight.float() * W_U[int(token)].float() / scale  # (C,)
    out = torch.zeros(L, H)
    for i in range(L):
        z = seen[i]
        keep = torch.eye(H, device=z.device, dtype=z.dtype).repeat_interleave(z.numel() // H, dim=1)  # (H, C)
        c_proj = model.transformer.h[i].attn.c_proj
        each = (c_proj(keep * z) - c_proj(torch.zeros_like(z))).float()  # (H, C): each head's output alone
        out[i] = ((each - each.mean(-1, keepdim=True)) @ direction).cpu()
    return out
