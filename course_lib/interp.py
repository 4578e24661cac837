"""Interpretability tools for notebook 08: find a model's induction and previous-token heads,
knock one out, and read what each layer would predict (the logit lens).

Every tool is a plain function of a model with GPT-2's module names (the course `GPT`, or a
`transformers` GPT-2): ``transformer.h[i].attn.c_proj``, ``transformer.ln_f``, ``lm_head``.

- **Head scores over a batch**: `induction_scores` (random tokens repeated twice; Olsson et
  al., 2022, https://arxiv.org/abs/2209.11895) and `previous_token_scores`, each an
  ``(L, H)`` tensor, drawn as a layer x head heatmap by `plot_head_scores`.
- **Ablation**: `ablate_heads` is a context manager that zeroes (or mean-ablates) the output
  of chosen heads with a forward pre-hook on ``attn.c_proj``: its input is ``(B, T, C)`` with
  the heads side by side, ``head_size`` channels each, so one head is one slice.
  `repeated_half_loss` measures what the heads are for: the loss on the second copy.
- **Logit lens** (nostalgebraist, 2020, https://www.lesswrong.com/posts/AcKRB8wDpdaN6v6ru):
  `logit_lens` applies the final LayerNorm and the unembedding to the residual stream after
  every layer; its last row equals the model's logits exactly.
- **Direct logit attribution**: `direct_logit_attribution` splits a logit into what each head
  writes straight into the residual stream, the final LayerNorm's scale held fixed (with the
  other parts, embeddings, MLPs and biases, the shares add up to the logit exactly).

The notebook has the learner write `logit_lens`, a head-ablation hook and
`direct_logit_attribution` before importing this module, then compares them with these.

Introduced in notebooks/08_attention_visualization.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from .errors import CourseInputError
from .viz.heads import attention_batch, induction_score, previous_token_score

__all__ = [
    "repeated_tokens", "attention_batch",  # attention_batch: viz.heads', re-exported
    "induction_scores", "previous_token_scores",
    "ranked_heads", "head_name", "random_head", "plot_head_scores",
    "zero_head", "mean_ablate_head", "ablate_heads", "repeated_half_loss", "ablation_losses",
    "ablation_scan",
    "logit_lens", "lens_top_tokens", "lens_accuracy", "plot_logit_lens",
    "direct_logit_attribution",
]

Head = tuple[int, int]  # (layer, head)


# --------------------------------------------------------------------------- inputs and attention
def repeated_tokens(vocab_size: int, period: int, batch: int = 8, *, seed: int = 0,
                    bos: int | None = None) -> torch.Tensor:
    """(batch, prefix + 2 * period) ids: `period` random tokens, then the same again.

    With `bos` (GPT-2's ``<|endoftext|>``, id 50256) each row starts with that token
    (prefix 1): GPT-2 parks spare attention on position 0 and behaves oddly without it.
    """
    if vocab_size < 2 or period < 2 or batch < 1:
        raise CourseInputError(f"repeated_tokens: need vocab_size >= 2, period >= 2, batch >= 1; got "
                               f"{vocab_size}, {period}, {batch}")
    g = torch.Generator().manual_seed(seed)
    first = torch.randint(0, vocab_size, (batch, period), generator=g)
    ids = torch.cat([first, first], dim=1)  # (B, 2p)
    if bos is not None:
        ids = torch.cat([torch.full((batch, 1), bos, dtype=torch.long), ids], dim=1)  # (B, 1 + 2p)
    return ids


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


def plot_head_scores(scores: torch.Tensor | dict[str, torch.Tensor], *, title: str = "", label: str = "score",
                     annotate: bool | None = None, diverging: bool = False) -> Any:
    """(L, H) score tensors as layer x head heatmaps (rows are layers), one panel per entry of a
    dict {panel title: scores}: a matplotlib Figure (no pyplot: a notebook shows it as the
    cell's value). Numbers are written in the cells of small grids (up to 64 heads).
    `diverging=True` is for signed scores (a share of a logit): red above zero, blue below, white at zero.
    """
    from matplotlib.figure import Figure

    panels = scores if isinstance(scores, dict) else {title: scores}
    mats = {name: s.detach().float().cpu().numpy() for name, s in panels.items()}
    for name, m in mats.items():
        if m.ndim != 2:
            raise CourseInputError(
                f"plot_head_scores: {name or 'scores'} has shape {m.shape}, expected (layers, heads)")
    widths = [min(1.6 + 0.5 * m.shape[1], 8) for m in mats.values()]
    height = min(1.4 + 0.42 * max(m.shape[0] for m in mats.values()), 7)
    fig = Figure(figsize=(sum(widths) + 1.2, height + (0.3 if title and isinstance(scores, dict) else 0)),
                 layout="constrained")
    axes = fig.subplots(1, len(mats), width_ratios=widths, squeeze=False)[0]
    if diverging:
        vmax = max(1e-6, *(float(abs(m).max()) for m in mats.values()))
        cmap, vmin = "RdBu_r", -vmax
    else:
        vmax = max(1.0, *(float(m.max()) for m in mats.values()))
        cmap, vmin = "viridis", 0.0
    for ax, (name, m) in zip(axes, mats.items()):
        L, H = m.shape
        im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
        ax.grid(False)
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        ax.set_xticks(range(H))
        ax.set_yticks(range(L))
        ax.tick_params(labelsize=7 if H > 8 else 9)
        if annotate if annotate is not None else L * H <= 64:
            for i in range(L):
                for j in range(H):
                    dark = abs(m[i, j]) > 0.6 * vmax if diverging else m[i, j] <= 0.6 * vmax
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=8,
                            color="white" if dark else "black")
        ax.set_title(name if isinstance(scores, dict) else title, fontsize=10)
    fig.colorbar(im, ax=list(axes), label=label)
    if isinstance(scores, dict) and title:
        fig.suptitle(title)
    return fig


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


def plot_logit_lens(lens: torch.Tensor, tokens: Sequence[str], decode: Any = None, *,
                    title: str = "logit lens: each layer's top guess for the next token") -> Any:
    """Heatmap of each layer's top probability at each position, labelled with its top token:
    rows "embed", "after block 0", ...; columns the input tokens. A matplotlib Figure (no pyplot).
    """
    from matplotlib.figure import Figure

    from .viz.attention import display_label

    probs = torch.softmax(lens, dim=-1).max(-1).values.numpy()  # (L + 1, T)
    words = lens_top_tokens(lens, decode)
    n, T = probs.shape
    if len(tokens) != T:
        raise CourseInputError(f"plot_logit_lens: {len(tokens)} tokens for {T} positions")
    fig = Figure(figsize=(min(2.0 + 0.75 * T, 18), 1.4 + 0.42 * n), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(probs, cmap="Blues", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.grid(False)
    for i in range(n):
        for j in range(T):
            ax.text(j, i, display_label(words[i][j], 8), ha="center", va="center", fontsize=7,
                    color="white" if probs[i, j] > 0.6 else "black")
    ax.set_xticks(range(T))
    ax.set_xticklabels([display_label(t, 8) for t in tokens], rotation=60, fontsize=8)
    ax.set_yticks(range(n))
    ax.set_yticklabels(["embed"] + [f"after block {i}" for i in range(n - 1)], fontsize=8)
    ax.set_xlabel("input token (each cell guesses the token after it)")
    fig.colorbar(im, ax=ax, label="top probability")
    ax.set_title(title)
    return fig


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
