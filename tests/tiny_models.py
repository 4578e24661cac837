"""Tiny random GPTs for the decoding tests (test_generate, test_generate_batch, test_speculative), and the
one-thread fixture they run under. Import `one_thread` into a test module to switch it on there."""

from __future__ import annotations

import pytest
import torch

from course_lib.model import GPT, GPTConfig

CONFIGS = [  # (vocab, layers, n_embd, heads)
    (97, 2, 32, 4),
    (61, 1, 16, 2),
    (128, 3, 48, 6),
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread (and the test machine is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_model(seed: int, vocab: int, n_layer: int, n_embd: int, n_head: int, n_positions: int = 64,
               scale: float = 0.3, **switches) -> GPT:
    """A tiny random GPT whose weights (norms aside) are N(0, scale^2): large enough that its choices vary."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                          n_head=n_head, **switches)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" not in name and "norm" not in name:
                p.normal_(0, scale)
    return model
