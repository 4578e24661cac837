"""Beam search with length penalty, early stopping and n-best (`beam_search`), and diverse
(group) beam search (`diverse_beam_search`), over one `_BeamState`.

References:
- Vijayakumar et al. 2016, "Diverse Beam Search".
- https://huggingface.co/blog/how-to-generate and transformers' ``generation/utils.py``,
  whose beam search bookkeeping (2K candidates, -1e9 masks, length penalty on the
  generated length) `beam_search` reproduces so that ids match exactly.

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import CourseInputError
from ..protocols import CausalLM
from .processors import DecodingSettings, logits_stages, process_logits, settings_from
from .runner import _check_common, _eos_list, _prepare, _Runner
from .trace import DecodingTrace

BIG_NEG = -1.0e9  # the "never pick this" score beam search adds, as transformers does
BEAM_DEFAULTS = {"num_beams": 4}
"""`beam_search`'s settings when built from keyword arguments."""
DIVERSE_DEFAULTS = {"num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 1.0}
"""`diverse_beam_search`'s settings when built from keyword arguments."""


@dataclass
class BeamSearchOutput:
    """The n best finished hypotheses per prompt, best first.

    sequences (B * n, T') are prompt + new ids, shorter ones padded with the eos id;
    scores (B * n,) their length-penalized log-probabilities; lengths the number of
    new tokens of each.
    """

    sequences: torch.Tensor
    scores: torch.Tensor
    lengths: list[int]


def _gather(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """t (B, N, ...) -> t[b, index[b, j], ...] of shape (B, J, ...)."""
    while index.dim() < t.dim():
        index = index.unsqueeze(-1)
    return torch.take_along_dim(t, index, dim=1)


class _BeamState:
    """Running and finished beams of B prompts, as transformers 5 keeps them.

    running (B, nb, L) with scores (B, nb): the sums of log-probabilities so far;
    finished (B, nb, L) with scores divided by (generated length ** length_penalty);
    a finished slot still holding -1e9 is empty.
    """

    def __init__(self, prompt: torch.Tensor, num_beams: int, max_length: int, eos: list[int],
                 length_penalty: float, early_stopping: bool | str, pad: int | None = None) -> None:
        B, T0 = prompt.shape
        n_eos = len(eos)
        fill = pad if pad is not None else (eos[0] if eos else 0)  # finished texts are padded (the first eos)
        self.B, self.nb, self.T0, self.max_length, self.fill = B, num_beams, T0, max_length, fill
        self.length_penalty, self.early_stopping = length_penalty, early_stopping
        self.keep = max(2, 1 + n_eos) * num_beams  # candidates kept per step
        dev = prompt.device
        self.running = torch.full((B, num_beams, max_length), fill, dtype=torch.long, device=dev)
        self.running[:, :, :T0] = prompt[:, None, :]
        self.running_scores = torch.zeros(B, num_beams, device=dev)
        self.running_scores[:, 1:] = BIG_NEG  # all beams start equal: only beam 0 may expand
        self.finished = self.running.clone()
        self.finished_scores = torch.full((B, num_beams), BIG_NEG, device=dev)
        self.finished_flag = torch.zeros(B, num_beams, dtype=torch.bool, device=dev)
        self.finished_len = torch.zeros(B, num_beams, dtype=torch.long, device=dev)
        self.can_improve = torch.ones(B, 1, dtype=torch.bool, device=dev)
        self.cur_len = T0
        self.parents = torch.zeros(B, num_beams, dtype=torch.long, device=dev)

    def step(self, logprobs: torch.Tensor, eos: torch.Tensor, sample: bool,
             generator: torch.Generator | None) -> bool:
        """logprobs (B, nb, V) after processors. Advances one token; False when done."""
        B, nb, V = logprobs.shape
        total = (logprobs + self.running_scores[:, :, None]).reshape(B, nb * V)  # (B, nb*V)
        # 1. the best `keep` continuations over all beams (or `keep` samples without replacement)
        if sample:
            idx = torch.multinomial(total.softmax(-1), self.keep, generator=generator)
            cand_scores = total.gather(1, idx)
            # best first, so "the first nb" below means the best nb samples (transformers >= 5.24
            # does the same; older versions kept the draw order)
            cand_scores, order = cand_scores.sort(dim=-1, descending=True)
            idx = idx.gather(-1, order)
        else:
            cand_scores, idx = torch.topk(total, self.keep)  # (B, K)
        cand_beam, cand_tok = idx // V, idx % V
        cand = _gather(self.running, cand_beam)  # (B, K, L)
        cand[:, :, self.cur_len] = cand_tok
        done = torch.isin(cand_tok, eos) | (self.cur_len + 1 >= self.max_length)  # (B, K)
        # 2. the best nb that did not finish keep running
        live_scores = cand_scores + done.to(torch.float32) * BIG_NEG
        top = torch.topk(live_scores, nb).indices  # (B, nb)
        self.running = _gather(cand, top)
        self.running_scores = _gather(live_scores, top)
        self.parents = _gather(cand_beam, top)
        # 3. finished candidates among the first nb enter the n-best list, length-penalized
        gen_len = self.cur_len + 1 - self.T0
        first_nb = torch.arange(self.keep, device=done.device) < nb
        new_done = done & first_nb[None, :]
        normed = cand_scores / (gen_len ** self.length_penalty)
        full = self.finished_flag.all(-1, keepdim=True) & (self.early_stopping is True)
        normed += full.to(torch.float32) * BIG_NEG
        normed += (~self.can_improve).to(torch.float32) * BIG_NEG
        normed += (~new_done) * BIG_NEG
        merged_scores = torch.cat([self.finished_scores, normed], dim=1)  # (B, nb + K)
        best = torch.topk(merged_scores, nb).indices
        self.finished = _gather(torch.cat([self.finished, cand], dim=1), best)
        self.finished_scores = _gather(merged_scores, best)
        self.finished_flag = _gather(torch.cat([self.finished_flag, new_done], dim=1), best)
        lens = torch.full_like(new_done, gen_len, dtype=torch.long)
        self.finished_len = _gather(torch.cat([self.finished_len, lens], dim=1), best)
        self.cur_len += 1
        # 4. can a running beam still beat the worst finished one?
        if self.early_stopping == "never" and self.length_penalty > 0.0:
            best_len = self.max_length - self.T0
        else:
            best_len = self.cur_len - self.T0
        best_running = self.running_scores[:, :1] / (best_len ** self.length_penalty)
        worst = torch.where(self.finished_flag, self.finished_scores.min(dim=1, keepdim=True).values, BIG_NEG)
        self.can_improve = self.can_improve & (best_running > worst).any(dim=-1, keepdim=True)
        all_full = bool(self.finished_flag.all()) and self.early_stopping is True
        return bool(self.can_improve.any()) and not all_full and not bool(done.all())

    def flat_parents(self) -> torch.Tensor:
        """Parent beam of each running beam as a row index of the flat (B * nb) batch."""
        offset = torch.arange(self.B, device=self.parents.device)[:, None] * self.nb
        return (self.parents + offset).reshape(-1)


def _check_beams(max_new_tokens: int, num_beams: int, num_return_sequences: int) -> None:
    _check_common(max_new_tokens, num_beams, num_return_sequences)
    if num_return_sequences > num_beams:
        raise CourseInputError(
            f"num_return_sequences={num_return_sequences} must be <= num_beams={num_beams}")


def _beam_start(model: CausalLM, input_ids: Sequence[int] | torch.Tensor, attention_mask: Any,
                eos_token_id: int | Sequence[int] | None, num_beams: int,
                ) -> tuple[torch.Tensor, torch.Tensor | None, list[int], torch.Tensor]:
    """What both beam searches start from: the prompt (B, T0), its padding mask for the flat (B * nb)
    batch of beams (or None), the eos ids as a list and a tensor."""
    prompt, mask = _prepare(input_ids, attention_mask, model)
    mask = None if mask is None else mask.repeat_interleave(num_beams, dim=0)  # (B * nb, T0)
    eos = _eos_list(eos_token_id)
    eos_t = torch.tensor(eos, dtype=torch.long, device=prompt.device)
    return prompt, mask, eos, eos_t


def _n_best(seqs: torch.Tensor, scores: torch.Tensor, lens: torch.Tensor, T0: int, n: int) -> BeamSearchOutput:
    """The n best finished texts per prompt: seqs (B, N, L), scores and lens (B, N) -> (B * n, T')."""
    B = seqs.size(0)
    best = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :n]  # (B, n)
    lengths = _gather(lens, best).reshape(-1)
    out_len = T0 + int(lengths.max())
    out = _gather(seqs, best)[:, :, :out_len].reshape(B * n, out_len)
    return BeamSearchOutput(out, _gather(scores, best).reshape(-1), lengths.tolist())


def beam_search(
    model: CausalLM,
    input_ids: Sequence[int] | torch.Tensor,
    max_new_tokens: int,
    settings: DecodingSettings | None = None,
    *,
    attention_mask: torch.Tensor | Sequence[int] | None = None,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
    use_cache: bool = True,
    seed: int | None = None,
    trace: DecodingTrace | None = None,
    **options: Any,
) -> BeamSearchOutput:
    """Beam search: keep the `num_beams` best partial texts by summed log-probability.

    A text that emits `eos_token_id` (or reaches the length limit) is finished and
    scored as sum log p / (new tokens ** length_penalty): length_penalty > 1 favours
    longer texts. ``early_stopping=True`` stops once num_beams texts have finished;
    False stops when no running beam can still beat the worst finished one (judged at
    the current length); "never" judges at the longest possible length. Returns the
    `num_return_sequences` best (n-best). ``settings.do_sample`` gives beam sampling.
    Keyword `options` build the settings (default ``num_beams=4``) or replace fields of the
    one given; `attention_mask` (a left-padded batch) and the other run options are `generate`'s.
    """
    settings = settings_from(settings, options, BEAM_DEFAULTS, caller="beam_search")
    num_beams, num_return_sequences = settings.num_beams, settings.num_return_sequences
    length_penalty, early_stopping = settings.length_penalty, settings.early_stopping
    _check_beams(max_new_tokens, num_beams, num_return_sequences)
    if early_stopping not in (True, False, "never"):
        raise CourseInputError(f"early_stopping must be True, False or 'never', got {early_stopping!r}")
    prompt, mask, eos, eos_t = _beam_start(model, input_ids, attention_mask, eos_token_id, num_beams)
    B, T0 = prompt.shape
    if max_new_tokens == 0:
        return BeamSearchOutput(prompt.repeat_interleave(num_return_sequences, 0),
                                torch.zeros(B * num_return_sequences), [0] * B * num_return_sequences)
    state = _BeamState(prompt, num_beams, T0 + max_new_tokens, eos, length_penalty, early_stopping, pad_token_id)
    generator = torch.Generator(device=prompt.device).manual_seed(seed) if seed is not None else None
    if trace is not None:
        trace.strategy = trace.strategy or "beam"
    run = _Runner(model, use_cache, attention_mask=mask)
    pads = None if mask is None else mask == 0  # (B*nb, T0) the prompt's padding
    with torch.inference_mode():
        while True:
            flat = state.running[:, :, :state.cur_len].reshape(B * num_beams, state.cur_len)
            logits = run(flat)[0]  # (B*nb, V)
            logprobs = F.log_softmax(logits, dim=-1)
            stages = logits_stages(flat, logprobs, settings, pads) if trace is not None else None
            logprobs = stages[-1][1] if stages else process_logits(flat, logprobs, settings, pads)
            more = state.step(logprobs.view(B, num_beams, -1), eos_t, settings.do_sample, generator)
            if trace is not None:
                beams = [(int(p), int(t), float(s)) for p, t, s in zip(
                    state.parents[0], state.running[0, :, state.cur_len - 1], state.running_scores[0])]
                trace.record(flat, stages, chosen=beams[0][1], beams=beams)
            if not more:
                break
            run.reorder(state.flat_parents())
    return _n_best(state.finished, state.finished_scores, state.finished_len, T0, num_return_sequences)


def diverse_beam_search(
    model: CausalLM,
    input_ids: Sequence[int] | torch.Tensor,
    max_new_tokens: int,
    settings: DecodingSettings | None = None,
    *,
    attention_mask: torch.Tensor | Sequence[int] | None = None,
    eos_token_id: int | Sequence[int] | None = None,
    pad_token_id: int | None = None,
    use_cache: bool = True,
    **options: Any,
) -> BeamSearchOutput:
    """Diverse (group) beam search (Vijayakumar et al. 2016).

    The beams are split into `num_beam_groups` groups that search one after another at
    each step; a group's log-probabilities are lowered by `diversity_penalty` times the
    number of times each token was just chosen by the earlier groups (Hamming
    diversity). Each group is an ordinary beam search of num_beams / groups beams; the
    n best finished texts over all groups are returned. Keyword `options` build the settings
    (defaults ``num_beams=4, num_beam_groups=2, diversity_penalty=1.0``) or replace fields of
    the one given.
    """
    settings = settings_from(settings, options, DIVERSE_DEFAULTS, caller="diverse_beam_search")
    num_beams, num_return_sequences = settings.num_beams, settings.num_return_sequences
    num_beam_groups, diversity_penalty = settings.num_beam_groups, settings.diversity_penalty
    length_penalty, early_stopping = settings.length_penalty, settings.early_stopping
    _check_beams(max_new_tokens, num_beams, num_return_sequences)
    if not isinstance(num_beam_groups, int) or num_beam_groups < 1 or num_beams % num_beam_groups:
        raise CourseInputError(
            f"num_beam_groups={num_beam_groups!r} must be >= 1 and divide num_beams={num_beams}")
    prompt, mask, eos, eos_t = _beam_start(model, input_ids, attention_mask, eos_token_id, num_beams)
    B, T0 = prompt.shape
    G, gs = num_beam_groups, num_beams // num_beam_groups
    groups = [_BeamState(prompt, gs, T0 + max(max_new_tokens, 1), eos, length_penalty, early_stopping, pad_token_id)
              for _ in range(G)]
    active = [max_new_tokens > 0] * G
    run = _Runner(model, use_cache, attention_mask=mask)
    pads = None if mask is None else (mask == 0).view(B, G, gs, T0)  # the prompt's padding, per group
    with torch.inference_mode():
        while any(active):
            cur = groups[0].cur_len
            flat = torch.cat([g.running[:, :, :cur] for g in groups], dim=1).reshape(B * num_beams, cur)
            logits = run(flat)[0].view(B, G, gs, -1)  # (B, G, gs, V)
            chosen = torch.zeros(B, logits.size(-1), device=logits.device)  # tokens earlier groups took
            order = []
            for gi, g in enumerate(groups):
                rows = flat.view(B, G, gs, cur)[:, gi].reshape(B * gs, cur)
                lp = F.log_softmax(logits[:, gi].reshape(B * gs, -1), dim=-1).view(B, gs, -1)
                lp = lp - diversity_penalty * chosen[:, None, :]  # Hamming diversity first
                group_pads = None if pads is None else pads[:, gi].reshape(B * gs, T0)
                lp = process_logits(rows, lp.reshape(B * gs, -1), settings, group_pads).view(B, gs, -1)
                if active[gi]:
                    active[gi] = g.step(lp, eos_t, False, None)
                    tok = g.running[:, :, g.cur_len - 1]  # (B, gs) the tokens this group just took
                    chosen.scatter_add_(1, tok, torch.ones_like(tok, dtype=chosen.dtype))
                    order.append(g.parents + gi * gs)
                else:  # a finished group keeps its beams where they are
                    g.running[:, :, g.cur_len] = g.fill
                    g.cur_len += 1
                    order.append(torch.arange(gs, device=prompt.device).expand(B, gs) + gi * gs)
            if not any(active) or groups[0].cur_len >= groups[0].max_length:
                break
            offset = torch.arange(B, device=prompt.device)[:, None] * num_beams
            run.reorder((torch.cat(order, dim=1) + offset).reshape(-1))
    # the n best finished texts over all groups
    scores = torch.cat([g.finished_scores for g in groups], dim=1)  # (B, num_beams)
    seqs = torch.cat([g.finished for g in groups], dim=1)
    lens = torch.cat([g.finished_len for g in groups], dim=1)
    return _n_best(seqs, scores, lens, T0, num_return_sequences)
