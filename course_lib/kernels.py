"""Hand-written CPU kernels the model calls: GELU (tanh form) as x * sigmoid(2z).

GPT-2's GELU is 0.5 x (1 + tanh z) with z = sqrt(2/pi) (x + 0.044715 x^3). Because
0.5 (1 + tanh z) = sigmoid(2z), it is also x * sigmoid(2z), and PyTorch's vectorised sigmoid
is cheaper on the CPU than its tanh, so forward and backward together beat the built-in kernel
there (figures in benchmarks/README.md, "Model training step"). Outputs agree with
``F.gelu(x, approximate="tanh")`` to float32 rounding (tests compare both directions).
`model.GELU` uses it on the CPU in float32 and the built-in kernel everywhere else.

Introduced in notebooks/04_transformer_block.ipynb.
"""

from __future__ import annotations

import math
from typing import Any

import torch

_K1 = 2.0 * math.sqrt(2.0 / math.pi)  # 2z = K1 * x + K2 * x^3 for GELU's tanh argument z
_K2 = _K1 * 0.044715


def is_compiling() -> bool:
    """True while ``torch.compile`` traces: hand-written kernels and data-dependent checks step aside."""
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and hasattr(compiler, "is_compiling") and compiler.is_compiling())


class SigmoidFormGELU(torch.autograd.Function):
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
