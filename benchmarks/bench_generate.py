"""Decoding speed: course `generate` (with and without the KV cache) against transformers.

Same weights (the course GPT and `GPT.to_hf()`), greedy decoding, CPU, three scenarios:

- one prompt: 16 tokens + 256 new, with the cache (course, transformers sdpa and eager);
- no cache: the same prompt, every step recomputing the whole text (course with
  ``logits_to_keep=1``, the head for the last position only, as `generate` runs it; course
  with the head for every position, as before issue 28; transformers sdpa);
- a ragged batch: 8 prompts of 4 to 32 tokens, left-padded with an attention mask, 128 new
  tokens each, with the cache (course, transformers sdpa);
- speculative greedy on the shipped pair (`pretrained.load_course_model()`, 6 x 256, and its
  2 x 128 draft): "ROMEO:" + 200 new tokens, course plain greedy against course speculative greedy
  (k = 4 draft tokens a round, and k = 8) and transformers' ``generate(assistant_model=...)``, all
  with identical ids; the acceptance rate is printed. (``--quick``: two tiny random models.)

Contestants take turns round after round in one process, so machine noise hits them alike;
the report is the median tokens/s (new tokens of all rows) by wall clock and by this
process's CPU time, and the median of the per-round ratios against each scenario's
transformers sdpa. Each round checks that a scenario's contestants produced the same ids.

    python benchmarks/bench_generate.py            # 4 layers, n_embd 256, vocab 8000
    python benchmarks/bench_generate.py --quick    # a tiny run that only proves the script works
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.generate import SpeculativeStats, generate  # noqa: E402
from course_lib.model import GPT, GPTConfig  # noqa: E402
from course_lib.runtime import quiet_the_stack  # noqa: E402

REF = "transformers (sdpa)"


class EveryHead(nn.Module):
    """The course GPT without `logits_to_keep` in its signature: `generate` then gets the head of every position."""

    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, input_ids: torch.Tensor, **kwargs: Any) -> Any:
        return self.model(input_ids, **kwargs)


def hf_run(m: nn.Module, prompt: torch.Tensor, mask: torch.Tensor, new: int, use_cache: bool
           ) -> Callable[[], torch.Tensor]:
    def run() -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return m.generate(prompt, attention_mask=mask, max_new_tokens=new, min_new_tokens=new,
                              do_sample=False, use_cache=use_cache, pad_token_id=0)
    return run


def scenarios(model: GPT, prompt: torch.Tensor, batch: torch.Tensor, batch_mask: torch.Tensor, new: int,
              batch_new: int) -> dict[str, dict[str, Callable[[], torch.Tensor]]]:
    """scenario -> contestant -> a call that decodes; the first contestant of each is the course."""
    hf_sdpa = model.to_hf(attn_implementation="sdpa").eval()
    hf_eager = model.to_hf(attn_implementation="eager").eval()
    ones = torch.ones_like(prompt)
    return {
        "one prompt, KV cache": {
            "course": lambda: generate(model, prompt, new),
            REF: hf_run(hf_sdpa, prompt, ones, new, True),
            "transformers (eager)": hf_run(hf_eager, prompt, ones, new, True),
        },
        "one prompt, no cache": {
            "course, last head only": lambda: generate(model, prompt, new, use_cache=False),
            "course, every head": lambda: generate(EveryHead(model), prompt, new, use_cache=False),
            REF: hf_run(hf_sdpa, prompt, ones, new, False),
        },
        f"ragged batch of {batch.size(0)}, KV cache": {
            "course": lambda: generate(model, batch, batch_new, attention_mask=batch_mask),
            REF: hf_run(hf_sdpa, batch, batch_mask, batch_new, True),
        },
    }


def hf_assisted(target: nn.Module, draft: nn.Module, prompt: torch.Tensor, new: int) -> Callable[[], torch.Tensor]:
    def run() -> torch.Tensor:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return target.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new,
                                   min_new_tokens=new, do_sample=False, assistant_model=draft, pad_token_id=0)
    return run


def speculative(target: GPT, draft: GPT, prompt: torch.Tensor, new: int, stats: dict[int, SpeculativeStats]
                ) -> dict[str, Callable[[], torch.Tensor]]:
    """The speculative scenario's contestants: plain greedy (course, transformers), speculative (course, k = 4
    and 8; transformers assisted). `stats` collects the course runs' acceptance."""
    hf_target = target.to_hf(attn_implementation="sdpa").eval()
    hf_draft = draft.to_hf(attn_implementation="sdpa").eval()
    ones = torch.ones_like(prompt)

    def course(k: int) -> Callable[[], torch.Tensor]:
        stats[k] = SpeculativeStats()
        return lambda: generate(target, prompt, new, assistant_model=draft, num_assistant_tokens=k, stats=stats[k])

    return {
        "course, plain greedy": lambda: generate(target, prompt, new),
        "course, speculative k=4": course(4),
        "course, speculative k=8": course(8),
        REF: hf_run(hf_target, prompt, ones, new, True),
        "transformers, assisted": hf_assisted(hf_target, hf_draft, prompt, new),
    }


def shipped_pair(quick: bool) -> tuple[GPT, GPT, torch.Tensor, int]:
    """(target, draft, prompt (1, T), new tokens): the course's pretrained pair, or two tiny models with --quick."""
    if quick:
        torch.manual_seed(3)
        cfg = GPTConfig(vocab_size=500, n_positions=64, n_embd=32, n_layer=2, n_head=2)
        return GPT(cfg).eval(), GPT(GPTConfig(**{**cfg.to_dict(), "n_layer": 1})).eval(), torch.tensor([[1, 2, 3]]), 16
    from course_lib.pretrained import load_course_model

    target, tok = load_course_model(verbose=False)
    draft, _ = load_course_model(draft=True, verbose=False)
    return target.eval(), draft.eval(), torch.tensor([tok.encode("ROMEO:\n")]), 200


def ragged_batch(vocab: int, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts of these lengths, left-padded with id 0: ids (B, T) and the attention mask (B, T)."""
    g = torch.Generator().manual_seed(2)
    T = max(lengths)
    ids = torch.zeros(len(lengths), T, dtype=torch.long)
    mask = torch.zeros(len(lengths), T, dtype=torch.long)
    for b, n in enumerate(lengths):
        ids[b, T - n:] = torch.randint(1, vocab, (n,), generator=g)
        mask[b, T - n:] = 1
    return ids, mask


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args(argv)
    quiet_the_stack()  # transformers' assisted generation warns about its own call of the draft
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        cfg = GPTConfig(vocab_size=500, n_positions=64, n_embd=32, n_layer=2, n_head=2)
        prompt_len, new, lengths, batch_new, rounds = 8, 16, [2, 5, 8, 3], 8, 1
    else:
        cfg = GPTConfig(vocab_size=8000, n_positions=512, n_embd=256, n_layer=4, n_head=8)
        prompt_len, new, lengths, batch_new, rounds = 16, 256, [4, 8, 12, 16, 20, 24, 28, 32], 128, args.rounds
    torch.manual_seed(0)
    model = GPT(cfg).eval()
    prompt = torch.randint(0, cfg.vocab_size, (1, prompt_len), generator=torch.Generator().manual_seed(1))
    batch, batch_mask = ragged_batch(cfg.vocab_size, lengths)
    plan = scenarios(model, prompt, batch, batch_mask, new, batch_new)
    tokens = {"one prompt, KV cache": new, "one prompt, no cache": new,
              f"ragged batch of {len(lengths)}, KV cache": batch_new * len(lengths)}
    target, draft, spec_prompt, spec_new = shipped_pair(args.quick)
    spec_name = f"speculative greedy, {'tiny random pair' if args.quick else 'shipped pair'}"
    accept: dict[int, SpeculativeStats] = {}
    plan[spec_name] = speculative(target, draft, spec_prompt, spec_new, accept)
    tokens[spec_name] = spec_new
    for runs in plan.values():  # warm up
        for fn in runs.values():
            fn()
    for st in accept.values():  # count the timed rounds only
        st.rounds = st.proposed = st.accepted = st.written = 0
    wall = {s: {k: [] for k in runs} for s, runs in plan.items()}
    cpu = {s: {k: [] for k in runs} for s, runs in plan.items()}
    load = []
    for r in range(rounds):
        for scenario, runs in plan.items():
            names = list(runs) if r % 2 == 0 else list(reversed(runs))  # alternate the order
            outs = {}
            for name in names:
                t0, c0 = time.perf_counter(), time.process_time()
                outs[name] = runs[name]()
                wall[scenario][name].append(time.perf_counter() - t0)
                cpu[scenario][name].append(time.process_time() - c0)
            for name, out in outs.items():
                assert torch.equal(out, outs[REF]), f"{scenario}: {name} gave other ids"
        load.append(os.getloadavg()[0])
    import transformers

    print(f"transformers {transformers.__version__}, torch {torch.__version__}, Python {sys.version.split()[0]}, "
          f"load average {statistics.median(load):.2f} (median over rounds; {os.cpu_count()} CPUs)")
    print(f"config: {cfg.n_layer} layers, n_embd {cfg.n_embd}, vocab {cfg.vocab_size}; one prompt {prompt_len} + "
          f"{new} new tokens; batch of {len(lengths)} prompts of {min(lengths)}-{max(lengths)} tokens + {batch_new} "
          f"new each; greedy; {rounds} rounds; torch threads {torch.get_num_threads()}; ids identical")
    for scenario, runs in plan.items():
        n = tokens[scenario]
        print(f"\n{scenario} ({n} new tokens a run)")
        print(f"{'contestant':32s} {'tok/s wall':>10s} {'tok/s CPU':>10s} {'x hf (wall)':>11s} {'x hf (CPU)':>10s}")
        for name in runs:
            ratio_w = statistics.median(b / a for a, b in zip(wall[scenario][name], wall[scenario][REF]))
            ratio_c = statistics.median(b / a for a, b in zip(cpu[scenario][name], cpu[scenario][REF]))
            print(f"{name:32s} {n / statistics.median(wall[scenario][name]):10.1f} "
                  f"{n / statistics.median(cpu[scenario][name]):10.1f} {ratio_w:10.2f}x {ratio_c:9.2f}x")
    plain = wall[spec_name]["course, plain greedy"]
    for k, st in accept.items():
        ratio = statistics.median(a / b for a, b in zip(plain, wall[spec_name][f"course, speculative k={k}"]))
        print(f"speculative k={k} against course plain greedy: {ratio:.2f}x wall (median of rounds); acceptance "
              f"{st.acceptance_rate:.0%}, {st.tokens_per_round:.2f} tokens per target pass")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
