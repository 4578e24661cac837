"""The trace: what happened at each decoding step, for teaching and for the explorer.

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class TraceStep:
    """One decoding step of the first sequence (row 0).

    `token_ids` are the top candidates by raw probability; `probs[stage]` their
    probability after each stage ("raw" first, then each processor that ran);
    `kept[i]` whether candidate i survives every filter; `removed_mass` the raw
    probability of all removed tokens; `entropy` (nats) of the final distribution;
    `chosen` the token picked; `beams` the running beams after the step as
    (parent beam, token, cumulative log-probability).
    """

    step: int
    token_ids: list[int]
    probs: dict[str, list[float]]
    kept: list[bool]
    removed_mass: float
    entropy: float
    chosen: int | None = None
    beams: list[tuple[int, int, float]] = field(default_factory=list)


@dataclass
class DecodingTrace:
    """Every step of one `generate` call (pass ``trace=DecodingTrace()`` to fill one)."""

    top_n: int = 10
    strategy: str = ""
    steps: list[TraceStep] = field(default_factory=list)

    def record(self, input_ids: torch.Tensor, stages: list[tuple[str, torch.Tensor]],
               chosen: int | None = None, beams: list[tuple[int, int, float]] | None = None) -> TraceStep:
        """Add a step from the processor stages of row 0 (as `logits_stages` returns them)."""
        step = summarize_stages(stages, self.top_n, step=len(self.steps), chosen=chosen)
        step.beams = list(beams or [])
        self.steps.append(step)
        return step

    @property
    def chosen(self) -> list[int | None]:
        return [s.chosen for s in self.steps]


def summarize_stages(stages: list[tuple[str, torch.Tensor]], top_n: int = 10, step: int = 0,
                     chosen: int | None = None) -> TraceStep:
    """A `TraceStep` for row 0 of `stages` (see `logits_stages`)."""
    raw = stages[0][1][0].float()
    final = stages[-1][1][0].float()
    raw_p = raw.softmax(-1)
    final_p = final.softmax(-1)
    n = min(top_n, raw.numel())
    ids = torch.topk(raw_p, n).indices.tolist()
    if chosen is not None and chosen not in ids:
        ids.append(int(chosen))
    probs = {name: s[0].float().softmax(-1)[ids].tolist() for name, s in stages}
    kept_all = torch.isfinite(final)
    logp = final_p.clamp_min(1e-30).log()
    entropy = float(-(final_p * logp)[kept_all].sum())
    return TraceStep(
        step=step, token_ids=ids, probs=probs, kept=kept_all[ids].tolist(),
        removed_mass=float(raw_p[~kept_all].sum()), entropy=entropy, chosen=chosen,
    )
