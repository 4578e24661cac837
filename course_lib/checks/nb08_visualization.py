"""Checks for notebooks/08_attention_visualization.ipynb: the three tools the learner writes before
`course_lib.interp` is imported, then the exercises.

The pieces, each a function of a model with GPT-2's module names (the course `GPT` or
`transformers`' `GPT2LMHeadModel`, whose ``c_proj`` is a ``Conv1D``):

- ``logit_lens(model, ids)``: the final LayerNorm and the unembedding applied to the residual
  stream after every block (`check_logit_lens`);
- ``ablate_head(model, layer, head)``: a forward pre-hook on ``attn.c_proj`` that zeroes one
  head's channels, returning the hook's handle (`check_ablate_head`);
- ``direct_logit_attribution(model, ids, token)``: what each head writes straight into the
  residual stream, read through the final LayerNorm (its scale held fixed) and the unembedding
  row of `token` (`check_direct_logit_attribution`).

The exercises at the end: head-role scores (`check_previous_token_score`,
`check_induction_score`, `check_attention_entropy`) and activation patching (`check_patch_head`).
The references here are what the notebook's collapsed reference cells show; the library's
versions are `course_lib.interp`'s, compared with these in tests/test_checks_nb08_visualization.py.

Introduced in notebooks/08_attention_visualization.ipynb.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch

from ..interp import attention_entropy, induction_score, previous_token_score
from ..model import GPT, GPTConfig
from ._core import Case, CheckResult, Exercise, Mistake, PieceProblem, describe

__all__ = ["check_logit_lens", "check_ablate_head", "check_direct_logit_attribution",
           "check_previous_token_score", "check_induction_score", "check_attention_entropy",
           "check_patch_head", "random_attention"]


# --------------------------------------------------------------------- small models to test on
def _tiny_gpt(n_layer: int = 2, n_head: int = 4, head_size: int = 2, vocab: int = 13, dropout: float = 0.0,
              training: bool = False, hf: bool = False) -> Any:
    """A small course GPT (or its transformers export, with Conv1D layers) whose weights are drawn
    large enough that every head and every block changes the logits visibly."""
    model = GPT(GPTConfig(vocab_size=vocab, n_positions=16, n_layer=n_layer, n_head=n_head,
                          n_embd=n_head * head_size, dropout=dropout))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    if hf:
        model = model.to_hf(attn_implementation="eager")
    return model.train(training)


def _ids(vocab: int, T: int) -> torch.Tensor:
    return torch.randint(0, vocab, (T,))  # the check seeds torch before each case


def _random_model(rng: random.Random) -> tuple[Any, int]:
    vocab = rng.randint(5, 30)
    model = _tiny_gpt(rng.randint(1, 3), rng.choice([1, 2, 3, 4]), rng.choice([2, 4]), vocab,
                      dropout=rng.choice([0.0, 0.0, 0.2]), training=rng.random() < 0.3, hf=rng.random() < 0.2)
    return model, vocab


def _logits(model: Any, ids: torch.Tensor) -> torch.Tensor:
    return model(ids.view(1, -1)).logits[0].float()  # (T, vocab)


# --------------------------------------------------------------------- piece 1: the logit lens
@torch.no_grad()
def logit_lens(model, ids):
    """What each layer would predict next: (L + 1, T, vocab) float32 logits on the CPU.

    Row 0 reads the embeddings, row i the residual stream after block i, each through the final
    LayerNorm and the unembedding; the last hidden state already went through ln_f, so the last
    row is exactly the model's own logits.
    """
    was_training = model.training
    model.eval()                                                     # no dropout
    device = next(model.parameters()).device
    out = model(torch.as_tensor(ids).view(1, -1).to(device), output_hidden_states=True)
    model.train(was_training)
    ln_f, unembed = model.transformer.ln_f, model.lm_head
    hidden = out.hidden_states                                       # L + 1 of (1, T, C)
    rows = [unembed(ln_f(h)) for h in hidden[:-1]] + [unembed(hidden[-1])]   # each (1, T, vocab)
    return torch.cat(rows).float().cpu()                             # (L + 1, T, vocab)


def _lens_variant(final_norm_twice: bool = False, no_norm: bool = False, skip_embeddings: bool = False) -> Callable:
    @torch.no_grad()
    def wrong(model, ids):
        model.eval()
        out = model(torch.as_tensor(ids).view(1, -1), output_hidden_states=True)
        ln_f, unembed = model.transformer.ln_f, model.lm_head
        hidden = out.hidden_states[1:] if skip_embeddings else out.hidden_states
        if no_norm:
            rows = [unembed(h) for h in hidden]
        elif final_norm_twice:
            rows = [unembed(ln_f(h)) for h in hidden]
        else:
            rows = [unembed(ln_f(h)) for h in hidden[:-1]] + [unembed(hidden[-1])]
        return torch.cat(rows).float()

    return wrong


def _model_and_ids(rng: random.Random) -> tuple[Any, torch.Tensor]:
    model, vocab = _random_model(rng)
    return model, _ids(vocab, rng.randint(1, 8))


def _a_tensor(noun: str, shape: str) -> Callable[[Any], str | None]:
    def contract(got: Any) -> str | None:
        if not isinstance(got, torch.Tensor):
            return f"your {noun} is {describe(got, 80)}; return one tensor of shape {shape}"
        return None
    return contract


LOGIT_LENS = Exercise(
    name="logit_lens",
    reference=logit_lens,
    make_inputs=_model_and_ids,
    hints=(
        "ask the model for its hidden states: the residual stream before the first block and after "
        "every block. Each one, read the way the model reads its last one (final LayerNorm, then the "
        "unembedding), gives that layer's guess for the next token",
        "there are one more hidden states than blocks, and the last one has already been through the "
        "final LayerNorm, so it goes straight to the unembedding; the others need the LayerNorm first. "
        "Run the model in eval mode so that dropout does not change what you read",
    ),
    cases=(
        Case("a two-layer model, five tokens", lambda: (_tiny_gpt(2, 4), _ids(13, 5))),
        Case("a single token", lambda: (_tiny_gpt(2, 2), _ids(13, 1))),
        Case("the ids as a plain list of ints", lambda: (_tiny_gpt(1, 2), _ids(13, 4).tolist())),
        Case("a transformers GPT-2 of three layers", lambda: (_tiny_gpt(3, 2, hf=True), _ids(13, 6))),
        Case("a model left in training mode, with dropout 0.5",
             lambda: (_tiny_gpt(2, 2, dropout=0.5, training=True), _ids(13, 6))),
    ),
    mistakes=(
        Mistake("the final LayerNorm applied again to the last hidden state, which already went through it",
                _lens_variant(final_norm_twice=True)),
        Mistake("the hidden states read through the unembedding without the final LayerNorm",
                _lens_variant(no_norm=True)),
        Mistake("the row of the embeddings left out: one row per block only", _lens_variant(skip_embeddings=True)),
    ),
    contract=_a_tensor("lens", "(layers + 1, T, vocab)"),
    noun="lens",
)


def check_logit_lens(fn: Callable[[Any, Any], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(model, ids)`: the (L + 1, T, vocab) logits of the residual stream read after every layer."""
    return LOGIT_LENS.check(fn, quiet=quiet)


# --------------------------------------------------------------------- piece 2: a head-ablation hook
def ablate_head(model, layer, head):
    """Remove one head: a forward pre-hook on block `layer`'s attn.c_proj that zeroes head `head`.

    c_proj's input is (B, T, C) with the heads side by side, head_size = C / n_head channels
    each; the hook returns a copy with head `head`'s channels set to 0. Returns the hook's
    handle: handle.remove() puts the head back.
    """
    n_head = model.config.n_head
    c_proj = model.transformer.h[layer].attn.c_proj

    def hook(module, args):
        z = args[0].clone()                                   # (B, T, C): the heads side by side
        hs = z.size(-1) // n_head                             # head size
        z[..., head * hs:(head + 1) * hs] = 0                 # this head now says nothing
        return (z, *args[1:])

    return c_proj.register_forward_pre_hook(hook)


class _HookRunner(Exercise):
    """Runs a piece that puts a hook on the model: the model's logits with the hook, then after
    ``handle.remove()`` (which must give the plain model back)."""

    def _runner(self, piece: Any) -> Callable[..., Any]:
        def run(model, layer, head, ids):
            model.eval()
            handle = piece(model, layer, head)
            if not callable(getattr(handle, "remove", None)):
                raise PieceProblem(f"your function returned {describe(handle, 80)}; return the handle that "
                                   "registering the hook gives, so that the caller can take the hook off again")
            with torch.no_grad():
                hooked = _logits(model, ids)
                handle.remove()
                return {"logits with the head removed": hooked, "logits after the handle's remove": _logits(model, ids)}

        return run

    def _arg_names(self, n: int) -> list[str]:
        return ["model", "layer", "head", "ids"][:n]


def _ablate_wrong_slice(model, layer, head):
    n_head = model.config.n_head

    def hook(module, args):
        z, hs = args[0].clone(), args[0].size(-1) // n_head
        z[..., head * n_head:head * n_head + hs] = 0
        return (z,)

    return model.transformer.h[layer].attn.c_proj.register_forward_pre_hook(hook)


def _ablate_output(model, layer, head):
    n_head = model.config.n_head

    def hook(module, args, out):
        out, hs = out.clone(), out.size(-1) // n_head
        out[..., head * hs:(head + 1) * hs] = 0
        return out

    return model.transformer.h[layer].attn.c_proj.register_forward_hook(hook)


def _ablation_inputs(rng: random.Random) -> tuple[Any, int, int, torch.Tensor]:
    vocab = rng.randint(5, 30)
    n_layer, n_head = rng.randint(1, 3), rng.choice([1, 2, 3, 4])
    model = _tiny_gpt(n_layer, n_head, rng.choice([2, 3]), vocab, hf=rng.random() < 0.2)
    return model, rng.randrange(n_layer), rng.randrange(n_head), _ids(vocab, rng.randint(1, 8))


ABLATE_HEAD = _HookRunner(
    name="ablate_head",
    reference=ablate_head,
    make_inputs=_ablation_inputs,
    hints=(
        "before c_proj mixes them, the heads' outputs sit side by side in its input, one block of "
        "head-size channels each; a hook that runs just before c_proj can hand it a copy of that input "
        "in which one block is zero",
        "the head size is the number of channels divided by the number of heads, and head h starts at h "
        "times the head size; the hook goes on the input side of c_proj (a pre-hook), returns the new "
        "arguments, and registering it gives the handle to return",
    ),
    cases=(
        Case("head 1 of layer 0, a two-layer model with four heads",
             lambda: (_tiny_gpt(2, 4, 3), 0, 1, _ids(13, 5))),
        Case("the last head of the last layer", lambda: (_tiny_gpt(2, 3), 1, 2, _ids(13, 4))),
        Case("a model with a single head", lambda: (_tiny_gpt(2, 1, 4), 1, 0, _ids(13, 4))),
        Case("a transformers GPT-2, whose c_proj is a Conv1D", lambda: (_tiny_gpt(2, 2, 3, hf=True), 1, 1,
                                                                     _ids(13, 5))),
        Case("a single token", lambda: (_tiny_gpt(1, 2), 0, 0, _ids(13, 1))),
    ),
    mistakes=(
        Mistake("the channels taken from head times the number of heads instead of head times the head size",
                _ablate_wrong_slice),
        Mistake("the head's channels zeroed in the output of c_proj, where the heads are already mixed, "
                "instead of in its input", _ablate_output),
    ),
    noun="logits",
)


def check_ablate_head(fn: Callable[[Any, int, int], Any], quiet: bool = False) -> CheckResult:
    """`fn(model, layer, head)` hooks attn.c_proj of block `layer` so that head `head` outputs zero, and
    returns the handle; the model's logits with the hook, and after its removal, must be the reference's."""
    return ABLATE_HEAD.check(fn, quiet=quiet)


# --------------------------------------------------------------------- piece 3: direct logit attribution
@torch.no_grad()
def direct_logit_attribution(model, ids, token):
    """How much each head adds, directly, to the logit of `token` at the last position: (L, H) on the CPU.

    Head h of block l writes its output (its channels of c_proj's input, through c_proj, without
    c_proj's bias) into the residual stream. The final LayerNorm is linear once its scale is held
    fixed at the residual stream's: a vector v then adds (v - mean(v)) / scale * ln_f.weight to the
    normalised stream, and that times the unembedding row of `token` is its share of the logit.
    """
    L, H = model.config.n_layer, model.config.n_head
    ln_f, W_U = model.transformer.ln_f, model.lm_head.weight               # W_U: (vocab, C)
    seen = {}                                                              # what enters each c_proj, and ln_f

    def recorder(key):
        def hook(module, args):
            seen[key] = args[0][0, -1]                                     # (C,) at the last position
        return hook

    handles = [model.transformer.h[i].attn.c_proj.register_forward_pre_hook(recorder(i)) for i in range(L)]
    handles.append(ln_f.register_forward_pre_hook(recorder("stream")))
    was_training = model.training
    model.eval()
    try:
        model(torch.as_tensor(ids).view(1, -1).to(W_U.device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    x = seen["stream"]                                                     # (C,) the residual stream at the end
    scale = (x.var(unbiased=False) + ln_f.eps).sqrt()                      # what ln_f divides by
    direction = ln_f.weight * W_U[token] / scale                           # (C,)
    out = torch.zeros(L, H)
    for i in range(L):
        z = seen[i]                                                        # (C,) the heads side by side
        keep_one = torch.eye(H, device=z.device).repeat_interleave(z.numel() // H, dim=1)  # (H, C): row h keeps head h
        c_proj = model.transformer.h[i].attn.c_proj
        each = c_proj(keep_one * z) - c_proj(torch.zeros_like(z))          # (H, C): each head's output, no bias
        out[i] = ((each - each.mean(-1, keepdim=True)) @ direction).float().cpu()   # (H,)
    return out


def _dla_variant(no_scale: bool = False, with_bias: bool = False, no_centre: bool = False) -> Callable:
    @torch.no_grad()
    def wrong(model, ids, token):
        L, H = model.config.n_layer, model.config.n_head
        ln_f, W_U = model.transformer.ln_f, model.lm_head.weight
        seen = {}
        handles = [model.transformer.h[i].attn.c_proj.register_forward_pre_hook(
            lambda m, a, i=i: seen.__setitem__(i, a[0][0, -1])) for i in range(L)]
        handles.append(ln_f.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0][0, -1])))
        model.eval()
        model(torch.as_tensor(ids).view(1, -1))
        for handle in handles:
            handle.remove()
        scale = 1.0 if no_scale else (seen["x"].var(unbiased=False) + ln_f.eps).sqrt()
        out = torch.zeros(L, H)
        for i in range(L):
            z, c_proj = seen[i], model.transformer.h[i].attn.c_proj
            keep_one = torch.eye(H).repeat_interleave(z.numel() // H, dim=1)
            each = c_proj(keep_one * z) - (0 if with_bias else c_proj(torch.zeros_like(z)))
            if not no_centre:
                each = each - each.mean(-1, keepdim=True)
            out[i] = each @ (ln_f.weight * W_U[token] / scale)
        return out

    return wrong


def _dla_inputs(rng: random.Random) -> tuple[Any, torch.Tensor, int]:
    model, vocab = _random_model(rng)
    return model, _ids(vocab, rng.randint(1, 8)), rng.randrange(vocab)


DIRECT_LOGIT_ATTRIBUTION = Exercise(
    name="direct_logit_attribution",
    reference=direct_logit_attribution,
    make_inputs=_dla_inputs,
    hints=(
        "every head adds its own output to the residual stream, and the logit is the final LayerNorm of "
        "that stream times one row of the unembedding; hold the LayerNorm's division fixed and the logit "
        "becomes a sum, one share per head (and per other part)",
        "record what enters each c_proj and what enters the final LayerNorm, at the last position, with "
        "hooks; a head's output is c_proj applied to its channels alone, minus what c_proj gives for "
        "zero (its bias). The LayerNorm subtracts the mean over the channels, divides by the stream's "
        "standard deviation (with its epsilon, not the unbiased one) and multiplies by its weight",
    ),
    cases=(
        Case("a two-layer model with four heads, five tokens", lambda: (_tiny_gpt(2, 4), _ids(13, 5), 3)),
        Case("a single token", lambda: (_tiny_gpt(2, 2), _ids(13, 1), 0)),
        Case("a model with a single head", lambda: (_tiny_gpt(1, 1, 4), _ids(13, 4), 7)),
        Case("a transformers GPT-2, whose c_proj is a Conv1D", lambda: (_tiny_gpt(2, 2, hf=True), _ids(13, 4), 12)),
        Case("a model left in training mode, with dropout 0.5",
             lambda: (_tiny_gpt(2, 2, dropout=0.5, training=True), _ids(13, 6), 5)),
    ),
    mistakes=(
        Mistake("the final LayerNorm's division by the spread of the residual stream left out",
                _dla_variant(no_scale=True)),
        Mistake("c_proj's bias counted in the output of every head", _dla_variant(with_bias=True)),
        Mistake("the heads' outputs not centred, though the LayerNorm subtracts the mean first",
                _dla_variant(no_centre=True)),
    ),
    contract=_a_tensor("attribution", "(layers, heads)"),
    noun="attribution",
    atol=1e-4,
)


def check_direct_logit_attribution(fn: Callable[[Any, Any, int], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(model, ids, token)`: (L, H), each head's direct share of the logit of `token` at the last position."""
    return DIRECT_LOGIT_ATTRIBUTION.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercises 1-3: head-role scores
def random_attention(rng: random.Random, T: int | None = None) -> torch.Tensor:
    """Random causal attention (L, H, T, T): each row a softmax over keys 0 .. i."""
    L, H = rng.randint(1, 3), rng.randint(1, 4)
    T = T if T is not None else rng.randint(4, 12)
    scores = torch.randn(L, H, T, T) * rng.uniform(0.5, 3.0)
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


def _one_hot_rows(T: int, key_of: Callable[[int], int]) -> torch.Tensor:
    """(1, 1, T, T) attention where query i looks only at key `key_of(i)`."""
    att = torch.zeros(1, 1, T, T)
    for i in range(T):
        att[0, 0, i, key_of(i)] = 1.0
    return att


def _uniform_causal(T: int) -> torch.Tensor:
    """(1, 1, T, T) attention where query i spreads evenly over keys 0 .. i."""
    mask = torch.ones(T, T).tril()
    return (mask / mask.sum(-1, keepdim=True))[None, None]


def _a_score_per_head(noun: str) -> Callable[[Any], str | None]:
    def contract(got: Any) -> str | None:
        if not isinstance(got, torch.Tensor):
            return f"your {noun} is a {type(got).__name__}; return a tensor with one number per layer and head"
        return None
    return contract


PREVIOUS_TOKEN_SCORE = Exercise(
    name="previous_token_score",
    reference=previous_token_score,
    make_inputs=lambda rng: (random_attention(rng),),
    hints=(
        "a previous-token head puts the attention of query i on key i minus one; the score is how much "
        "it does that on average, one number per layer and head",
        "take the weights just below the diagonal of each attention map (query i, key i minus one) for "
        "the queries that have a previous token, from the second on, and average them over the queries "
        "only; the result has the shape of the layer and head dimensions",
    ),
    cases=(
        Case("attention entirely on the previous token",
             lambda: (_one_hot_rows(5, lambda i: max(i - 1, 0)),)),
        Case("uniform causal attention over four positions",
             lambda: (_uniform_causal(4),)),
        Case("two tokens", lambda: (random_attention(random.Random(2), T=2),)),
        Case("several layers and heads", lambda: (random_attention(random.Random(5), T=6),)),
    ),
    mistakes=(Mistake("the sum over the previous-token weights divided by T, counting query 0 that has none",
                      lambda att: att.diagonal(offset=-1, dim1=-2, dim2=-1).sum(-1) / att.size(-1)),),
    contract=_a_score_per_head("score"),
    noun="score",
)


def check_previous_token_score(fn: Callable[[torch.Tensor], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(att)`: mean attention from each query i >= 1 to key i - 1, one number per head."""
    return PREVIOUS_TOKEN_SCORE.check(fn, quiet=quiet)


def _induction_inputs(rng: random.Random) -> tuple[torch.Tensor, int]:
    period = rng.randint(2, 6)
    return random_attention(rng, T=2 * period + rng.choice([0, 0, 1, 3])), period


INDUCTION_SCORE = Exercise(
    name="induction_score",
    reference=induction_score,
    make_inputs=_induction_inputs,
    hints=(
        "in a sequence that repeats itself every period tokens, an induction head looks back to the "
        "earlier copy of the current token and attends to the token that came right after it",
        "for each query t from period on, the key that matters is t minus period plus one (one after the "
        "earlier copy, not the copy itself); average those weights over the queries, one number per layer "
        "and head, for any sequence length",
    ),
    cases=(
        Case("perfect induction attention, period 3",
             lambda: (_one_hot_rows(6, lambda t: t - 3 + 1 if t >= 3 else 0), 3)),
        Case("attention on the earlier copy itself, period 3",
             lambda: (_one_hot_rows(6, lambda t: t - 3 if t >= 3 else t), 3)),
        Case("a sequence longer than two periods", lambda: (random_attention(random.Random(3), T=9), 3)),
        Case("period two", lambda: (random_attention(random.Random(4), T=4), 2)),
    ),
    mistakes=(Mistake("the weight on the earlier copy itself instead of on the token after it",
                      lambda att, period: torch.stack([att[..., t, t - period] for t in range(period, att.size(-1))],
                                                      -1).mean(-1)),),
    contract=_a_score_per_head("score"),
    noun="score",
)


def check_induction_score(fn: Callable[[torch.Tensor, int], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(att, period)`: mean attention from query t >= period to key t - period + 1."""
    return INDUCTION_SCORE.check(fn, quiet=quiet)


ATTENTION_ENTROPY = Exercise(
    name="attention_entropy",
    reference=attention_entropy,
    make_inputs=lambda rng: (random_attention(rng),),
    hints=(
        "the entropy of one attention row says how spread out it is: zero when the query looks at a "
        "single key, the log of the number of keys when it spreads evenly. Measure it in nats",
        "for each row, add up minus p times the natural log of p over the keys, where a zero weight "
        "contributes nothing (zero times log zero counts as zero, not as NaN); then average the rows "
        "over the queries, one number per layer and head",
    ),
    cases=(
        Case("one-hot rows",
             lambda: (_one_hot_rows(4, lambda i: i),)),
        Case("uniform causal rows", lambda: (_uniform_causal(5),)),
        Case("several layers and heads", lambda: (random_attention(random.Random(6), T=6),)),
    ),
    mistakes=(Mistake("the entropy in bits (base-two logarithm) instead of in nats (natural logarithm)",
                      lambda att: -(att * torch.log2(att.clamp_min(1e-12))).sum(-1).mean(-1)),),
    contract=_a_score_per_head("entropy"),
    noun="entropy",
)


def check_attention_entropy(fn: Callable[[torch.Tensor], torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(att)`: the mean over queries of each row's entropy -sum p log p (nats)."""
    return ATTENTION_ENTROPY.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise 4: activation patching
@torch.no_grad()
def _ref_patch_head(model, clean_ids, corrupt_ids, layer, head):
    """(T, vocab) logits of the run on `corrupt_ids` in which head `head` of block `layer` outputs
    what it output on `clean_ids`: one hook records its channels of c_proj's input on the clean
    run, another writes them into the corrupted run. Both hooks are taken off again.
    """
    c_proj = model.transformer.h[layer].attn.c_proj
    hs = model.config.n_embd // model.config.n_head
    part = slice(head * hs, (head + 1) * hs)                  # the head's channels
    clean = {}

    def record(module, args):
        clean["z"] = args[0][..., part].clone()               # (1, T, hs) on the clean run

    def patch(module, args):
        z = args[0].clone()
        z[..., part] = clean["z"]                             # the clean output, in the corrupted run
        return (z, *args[1:])

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for hook, ids in ((record, clean_ids), (patch, corrupt_ids)):
            handle = c_proj.register_forward_pre_hook(hook)
            try:
                logits = model(torch.as_tensor(ids).view(1, -1).to(device)).logits[0]   # (T, vocab)
            finally:
                handle.remove()
    finally:
        model.train(was_training)
    return logits.float()


class _PatchRunner(Exercise):
    """Runs a patching piece, then the model once more on the corrupted ids: no hook may be left on."""

    def _runner(self, piece: Any) -> Callable[..., Any]:
        def run(model, clean_ids, corrupt_ids, layer, head):
            got = piece(model, clean_ids, corrupt_ids, layer, head)
            if not isinstance(got, torch.Tensor):
                raise PieceProblem(f"your function returned {describe(got, 80)}; return the (T, vocab) logits "
                                   "of the corrupted run")
            model.eval()
            with torch.no_grad():
                later = _logits(model, torch.as_tensor(corrupt_ids))
            return {"patched logits": got, "logits of a later run on the corrupted ids": later}

        return run


def _patch_left_on(model, clean_ids, corrupt_ids, layer, head):
    c_proj = model.transformer.h[layer].attn.c_proj
    hs = model.config.n_embd // model.config.n_head
    part = slice(head * hs, (head + 1) * hs)
    clean = {}
    handle = c_proj.register_forward_pre_hook(lambda m, a: clean.__setitem__("z", a[0][..., part].clone()))
    model.eval()
    with torch.no_grad():
        model(torch.as_tensor(clean_ids).view(1, -1))
    handle.remove()

    def patch(module, args):
        z = args[0].clone()
        z[..., part] = clean["z"]
        return (z,)

    c_proj.register_forward_pre_hook(patch)                   # never taken off
    with torch.no_grad():
        return model(torch.as_tensor(corrupt_ids).view(1, -1)).logits[0].float()


def _patch_whole_layer(model, clean_ids, corrupt_ids, layer, head):
    c_proj = model.transformer.h[layer].attn.c_proj
    clean = {}
    model.eval()
    with torch.no_grad():
        handle = c_proj.register_forward_pre_hook(lambda m, a: clean.__setitem__("z", a[0].clone()))
        model(torch.as_tensor(clean_ids).view(1, -1))
        handle.remove()
        handle = c_proj.register_forward_pre_hook(lambda m, a: (clean["z"],))
        logits = model(torch.as_tensor(corrupt_ids).view(1, -1)).logits[0].float()
        handle.remove()
    return logits


def _patch_pair(n_layer: int, n_head: int, T: int, change: str = "first", hf: bool = False,
                layer: int = 0, head: int = 0) -> tuple[Any, torch.Tensor, torch.Tensor, int, int]:
    model = _tiny_gpt(n_layer, n_head, 3, 13, hf=hf)
    clean = _ids(13, T)
    corrupt = clean.clone()
    if change == "first":
        corrupt[0] = (clean[0] + 1) % 13
    elif change == "all":
        corrupt = (clean + 5) % 13
    return model, clean, corrupt, layer, head


def _patch_inputs(rng: random.Random) -> tuple[Any, torch.Tensor, torch.Tensor, int, int]:
    n_layer, n_head = rng.randint(1, 3), rng.choice([1, 2, 4])
    return _patch_pair(n_layer, n_head, rng.randint(1, 8), rng.choice(["first", "all", "all", "none"]),
                       hf=rng.random() < 0.2, layer=rng.randrange(n_layer), head=rng.randrange(n_head))


PATCH_HEAD = _PatchRunner(
    name="patch_head",
    reference=_ref_patch_head,
    make_inputs=_patch_inputs,
    hints=(
        "two runs: first on the clean ids, where a hook only records what the head sends into c_proj; "
        "then on the corrupted ids, where a hook replaces that head's channels, and only those, by the "
        "recorded ones. Every hook comes off again afterwards",
        "both hooks sit on the input side of the block's c_proj; the head's channels start at the head "
        "times the head size. Take each hook off as soon as its run is over, even when the run fails, or "
        "it stays in the model",
    ),
    cases=(
        Case("a clean and a corrupted run that differ in their first token, head 1 of layer 1",
             lambda: _patch_pair(2, 2, 5, "first", layer=1, head=1)),
        Case("the same ids for the clean and the corrupted run", lambda: _patch_pair(2, 4, 4, "none", head=2)),
        Case("a model with a single head", lambda: _patch_pair(1, 1, 4, "all")),
        Case("a transformers GPT-2, whose c_proj is a Conv1D", lambda: _patch_pair(2, 2, 5, "all", hf=True,
                                                                                layer=1)),
        Case("a single token", lambda: _patch_pair(2, 2, 1, "all", layer=1)),
    ),
    mistakes=(
        Mistake("the patching hook left on the model after the call", _patch_left_on),
        Mistake("every head of the layer patched instead of the one asked for", _patch_whole_layer),
    ),
    noun="logits",
)


def check_patch_head(fn: Callable[..., torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(model, clean_ids, corrupt_ids, layer, head)`: the corrupted run's (T, vocab) logits with one head's
    output taken from the clean run, and no hook left on the model."""
    return PATCH_HEAD.check(fn, quiet=quiet)
