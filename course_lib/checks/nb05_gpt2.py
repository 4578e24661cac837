"""Checks for notebooks/05_gpt2_model.ipynb: the three pieces the learner writes, then the exercises.

The pieces: the ``forward`` of ``GPT`` (embeddings, blocks, ln_f, the tied head, the shifted loss;
`check_gpt`, a `ModuleExercise`), ``convert_hf_weights(hf_state_dict)`` (Hugging Face's
GPT2LMHeadModel state dict in the course's layout: the Conv1D transposes, the mask buffers left
out; `check_hf_weights`) and the plain generation loop ``generate(model, ids, n_new, temperature)``
(`check_generation_loop`). The references here are what the notebook's collapsed reference cells
show. The exercises at the end: `check_sequence_loss` (one loss per sequence, -100 labels
ignored), `check_bare_state_dict` (the hub file's GPT2Model names) and
`check_variant_parameter_count` (GPTConfig's bias, n_inner and tie_word_embeddings switches).

Introduced in notebooks/05_gpt2_model.ipynb.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..model import CONV1D_WEIGHTS, Block, GPTConfig, count_parameters
from ._core import Build, Case, CheckResult, Exercise, Mistake, ModuleExercise, as_number, describe
from .nb04_block import _ShownConfig

__all__ = [
    "check_gpt",
    "check_hf_weights",
    "check_generation_loop",
    "check_sequence_loss",
    "check_bare_state_dict",
    "check_variant_parameter_count",
]

CONV1D = CONV1D_WEIGHTS  # the four weights course_lib.convert transposes, as the references below name them


def _randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape) * scale  # the check seeds torch before each case


def _config(vocab_size: int = 20, n_positions: int = 8, n_embd: int = 8, n_layer: int = 2, n_head: int = 2,
            dropout: float = 0.0, **switches: Any) -> GPTConfig:
    return _ShownConfig(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                        n_head=n_head, dropout=dropout, **switches)


# --------------------------------------------------------------------- piece 1: the model
class GPT(nn.Module):
    """GPT-2: token and position embeddings, a stack of pre-LN blocks, a final LayerNorm, a tied head."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),     # token embedding
            wpe=nn.Embedding(config.n_positions, config.n_embd),    # position embedding
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight           # weight tying: one matrix
        self.init_weights()

    def init_weights(self):
        self.apply(self._init_weights)
        for name, p in self.named_parameters():                     # residual projections
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * self.config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, input_ids, labels=None):
        B, T = input_ids.shape                                      # (B, T)
        pos = torch.arange(T, device=input_ids.device)              # (T,)
        x = self.transformer.wte(input_ids) + self.transformer.wpe(pos)   # (B, T, C)
        x = self.transformer.drop(x)
        for block in self.transformer.h:
            x, _, _ = block(x)                                      # (B, T, C); no cache, no weights
        x = self.transformer.ln_f(x)                                # (B, T, C)
        logits = self.lm_head(x)                                    # (B, T, vocab)
        loss = None
        if labels is not None:                                      # position t predicts token t + 1
            V = logits.size(-1)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1))  # -100 ignored
        return logits, loss


def _shifted_loss(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
    if labels is None:
        return None
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten())


class _NoPositions(GPT):
    def forward(self, input_ids, labels=None):
        x = self.transformer.drop(self.transformer.wte(input_ids))
        for block in self.transformer.h:
            x = block(x)[0]
        logits = self.lm_head(self.transformer.ln_f(x))
        return logits, _shifted_loss(logits, labels)


class _NoFinalNorm(GPT):
    def forward(self, input_ids, labels=None):
        pos = torch.arange(input_ids.size(1))
        x = self.transformer.drop(self.transformer.wte(input_ids) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)[0]
        logits = self.lm_head(x)
        return logits, _shifted_loss(logits, labels)


class _NoEmbeddingDropout(GPT):
    def forward(self, input_ids, labels=None):
        pos = torch.arange(input_ids.size(1))
        x = self.transformer.wte(input_ids) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)[0]
        logits = self.lm_head(self.transformer.ln_f(x))
        return logits, _shifted_loss(logits, labels)


class _UnshiftedLoss(GPT):
    def forward(self, input_ids, labels=None):
        logits, _ = GPT.forward(self, input_ids)
        loss = None if labels is None else F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        return logits, loss


class _ShiftedBackwards(GPT):
    def forward(self, input_ids, labels=None):
        logits, _ = GPT.forward(self, input_ids)
        loss = None if labels is None else F.cross_entropy(logits[:, 1:].flatten(0, 1), labels[:, :-1].flatten())
        return logits, loss


def _spread_weights(model: nn.Module) -> None:
    """Weights far from GPT-2's tiny initialisation, so that every piece of the forward shows in the logits."""
    for name, p in model.named_parameters():
        norm_weight = ".ln_" in name and name.endswith("weight")    # ln_1, ln_2, ln_f: around one
        p.copy_(torch.randn_like(p) * 0.3 + (1.0 if norm_weight else 0.0))


def _gpt_build(dropout: float = 0.0, training: bool = False, **shape: int) -> Build:
    return Build({"config": _config(dropout=dropout, **shape)}, training)


def _ids(B: int, T: int, V: int = 20) -> torch.Tensor:
    return torch.randint(0, V, (B, T))


def _gpt_inputs(rng: random.Random) -> tuple:
    n_head = rng.choice([1, 2, 4])
    V, P = rng.randint(5, 30), rng.randint(4, 12)
    build = _gpt_build(rng.choice([0.0, 0.0, 0.1, 0.5]), rng.random() < 0.3, vocab_size=V, n_positions=P,
                       n_embd=n_head * rng.choice([2, 4]), n_layer=rng.randint(1, 2), n_head=n_head)
    ids = _ids(rng.randint(1, 3), rng.randint(1, P), V)
    return (build, ids, ids) if ids.size(1) >= 2 and rng.random() < 0.6 else (build, ids)


def _padded_labels() -> tuple:
    ids = _ids(2, 6)
    labels = ids.clone()
    labels[0, -2:] = -100                                           # two padding positions, ignored
    return _gpt_build(), ids, labels


GPT_EXERCISE = ModuleExercise(
    name="gpt",
    reference=GPT,
    make_inputs=_gpt_inputs,
    hints=(
        "the stream starts as the sum of two embeddings (the token's and its position's), goes through "
        "dropout and every block in turn, then the final LayerNorm and the head; with labels, position t "
        "is scored on the token at position t plus one",
        "positions are counted from zero up to the sequence length; each block returns three things and "
        "the stream is the first; the final LayerNorm comes before the head. For the loss leave out the "
        "last position's scores and the first label, flatten batch and time, and take the mean "
        "cross-entropy (labels of minus one hundred are ignored by it); without labels the loss is None",
    ),
    cases=(
        Case("two layers, a batch of two, with labels", lambda: (_gpt_build(), _ids(2, 5), _ids(2, 5))),
        Case("a single position, no labels", lambda: (_gpt_build(), _ids(3, 1))),
        Case("one layer, one head, a batch of one, with labels",
             lambda: (_gpt_build(n_layer=1, n_head=1), _ids(1, 4), _ids(1, 4))),
        Case("a sequence as long as the context window, with labels",
             lambda: (_gpt_build(), _ids(1, 8), _ids(1, 8))),
        Case("labels of -100 on the last two positions of the first row (padding)", _padded_labels),
        Case("dropout 0.5, in eval mode, with labels", lambda: (_gpt_build(0.5), _ids(2, 4), _ids(2, 4))),
        Case("dropout 0.5, in training mode, with labels",
             lambda: (_gpt_build(0.5, training=True), _ids(2, 4), _ids(2, 4))),
    ),
    mistakes=(
        Mistake("the position embeddings not added", _NoPositions),
        Mistake("the final LayerNorm ln_f not applied before the head", _NoFinalNorm),
        Mistake("each position scored on its own token instead of the next one", _UnshiftedLoss),
        Mistake("each position scored on the token before it instead of the one after it", _ShiftedBackwards),
        Mistake("the dropout after the embeddings left out", _NoEmbeddingDropout),
    ),
    init_weights=_spread_weights,
    noun="output",
)


def check_gpt(cls: type[nn.Module], quiet: bool = False) -> CheckResult:
    """`cls` is a `GPT` class: built from a config, given the reference's weights by name, it maps ids (B, T)
    (and labels) to (logits (B, T, vocab), loss or None) like GPT-2, in training and eval mode."""
    return GPT_EXERCISE.check(cls, quiet=quiet)


# --------------------------------------------------------------------- piece 2: Hugging Face's weights
class _StateDict(dict):
    """A state dict whose repr lists the names and shapes (a failing input stays readable)."""

    def __repr__(self) -> str:
        items = ", ".join(f"{k} {tuple(v.shape)}" for k, v in self.items())
        return f"a state dict of {len(self)} tensors: {items}"


def _hf_state_dict(n_layer: int = 1, n_embd: int = 4, n_head: int = 2, vocab_size: int = 10, n_positions: int = 6,
                   buffers: bool = False, prefix: str = "transformer.", head: bool = True) -> _StateDict:
    """A GPT-2 state dict as transformers lays it out: Conv1D weights (in, out), the tied lm_head named too,
    and, when `buffers`, the causal-mask buffers older versions save (h.N.attn.bias, h.N.attn.masked_bias)."""
    model = GPT(_config(vocab_size, n_positions, n_embd, n_layer, n_head))
    out = _StateDict()
    for name, t in model.state_dict().items():
        if name == "lm_head.weight":
            continue
        t = torch.randn_like(t)                                     # every tensor different
        out[prefix + name.removeprefix("transformer.")] = t.t().contiguous() if name.endswith(CONV1D) else t
        if buffers and name.endswith("attn.c_proj.bias"):          # after the layer's attention weights
            layer = name.removeprefix("transformer.").rsplit(".attn.", 1)[0]
            mask = torch.ones(n_positions, n_positions, dtype=torch.bool).tril().view(1, 1, n_positions, n_positions)
            out[f"{prefix}{layer}.attn.bias"] = mask
            out[f"{prefix}{layer}.attn.masked_bias"] = torch.tensor(-1e4)
    if head:
        out["lm_head.weight"] = out[prefix + "wte.weight"]          # tied: the same tensor under a second name
    return out


def convert_hf_weights(hf_state_dict):
    """GPT2LMHeadModel's state dict -> yours: the same names, the four Conv1D weights transposed, and the
    attention-mask buffers some transformers versions save (names ending in .attn.bias or .attn.masked_bias)
    left out."""
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    converted = {}
    for name, t in hf_state_dict.items():
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            continue                                                # a causal-mask buffer, not a weight
        converted[name] = t.t() if name.endswith(conv1d) else t    # Conv1D (in, out) -> nn.Linear (out, in)
    return converted


def _convert_variant(transpose: str = "conv1d", drop: tuple[str, ...] = (".attn.bias", ".attn.masked_bias")
                     ) -> Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]:
    def wrong(sd):
        out = {}
        for name, t in sd.items():
            if drop and name.endswith(drop):
                continue
            flip = name.endswith(CONV1D) if transpose == "conv1d" else (transpose == "all 2-D" and t.dim() == 2)
            out[name] = t.t() if flip else t
        return out

    return wrong


def _hf_inputs(rng: random.Random) -> tuple[_StateDict]:
    n_head = rng.choice([1, 2])
    return (_hf_state_dict(rng.randint(1, 3), n_head * rng.choice([2, 4]), n_head, rng.randint(5, 20),
                           rng.randint(3, 8), buffers=rng.random() < 0.5),)


HF_WEIGHTS = Exercise(
    name="hf_weights",
    reference=convert_hf_weights,
    make_inputs=_hf_inputs,
    hints=(
        "your GPT uses GPT-2's names, so every weight keeps its name; what differs is how four of the "
        "matrices are stored, and a few entries that are not weights at all",
        "Conv1D stores its matrix as inputs by outputs, nn.Linear as outputs by inputs: transpose exactly "
        "the weights of c_attn, c_proj (both of them) and c_fc, not the embeddings. Leave out the mask "
        "buffers, whose names end in attn dot bias or attn dot masked_bias; careful, the biases of c_attn "
        "also end in attn dot bias, but with c_ before it",
    ),
    cases=(
        Case("one layer, no mask buffers", lambda: (_hf_state_dict(),)),
        Case("two layers, with the mask buffers older transformers versions save",
             lambda: (_hf_state_dict(2, buffers=True),)),
        Case("one head of width 2, three positions", lambda: (_hf_state_dict(1, 2, 1, 5, 3),)),
    ),
    mistakes=(
        Mistake("every 2-D weight transposed, the embeddings too", _convert_variant("all 2-D")),
        Mistake("no weight transposed", _convert_variant("none")),
        Mistake("the biases of c_attn left out along with the mask buffers",
                _convert_variant(drop=("attn.bias", "attn.masked_bias"))),
        Mistake("the mask buffers kept (they are not weights of your model)", _convert_variant(drop=())),
    ),
    noun="state dict",
)


def check_hf_weights(fn: Callable[[Mapping[str, torch.Tensor]], Mapping[str, torch.Tensor]], quiet: bool = False
                     ) -> CheckResult:
    """`fn(hf_state_dict)` returns GPT2LMHeadModel's weights as your GPT's state dict (Conv1D weights
    transposed, the mask buffers left out)."""
    return HF_WEIGHTS.check(fn, quiet=quiet)


# --------------------------------------------------------------------- piece 3: the generation loop
def generate(model, ids, n_new, temperature=0.0):
    """Append `n_new` tokens to `ids` (B, T), one at a time: (B, T + n_new).

    The model sees at most its last `model.config.n_positions` tokens; the scores of the last position
    pick the next token: the most likely one when temperature is 0 (greedy), else a sample of
    softmax(scores / temperature) drawn with torch.multinomial.
    """
    with torch.no_grad():                                          # no training here: no gradients
        for _ in range(n_new):
            context = ids[:, -model.config.n_positions:]           # (B, T'): at most the context window
            logits, _ = model(context)                             # (B, T', vocab)
            last = logits[:, -1, :]                                # (B, vocab): the next-token scores
            if temperature == 0:
                nxt = last.argmax(dim=-1, keepdim=True)            # (B, 1): greedy
            else:
                probs = F.softmax(last / temperature, dim=-1)      # (B, vocab)
                nxt = torch.multinomial(probs, num_samples=1)      # (B, 1): a sample
            ids = torch.cat([ids, nxt], dim=1)                     # (B, T + 1)
    return ids


def _generate_variant(position: int = -1, crop: str = "last", temperature: str = "divide") -> Callable[..., Any]:
    def wrong(model, ids, n_new, temperature_=0.0):
        P = model.config.n_positions
        for _ in range(n_new):
            context = ids[:, -P:] if crop == "last" else ids[:, :P]
            with torch.no_grad():
                last = model(context)[0][:, position, :]
            if temperature_ == 0:
                nxt = last.argmax(dim=-1, keepdim=True)
            else:
                scaled = last / temperature_ if temperature == "divide" else last * temperature_
                nxt = torch.multinomial(F.softmax(scaled, dim=-1), num_samples=1)
            ids = torch.cat([ids, nxt], dim=1)
        return ids

    return wrong


def _small_model(vocab_size: int = 12, n_positions: int = 8, n_embd: int = 8, n_layer: int = 1, n_head: int = 2
                 ) -> GPT:
    model = GPT(_config(vocab_size, n_positions, n_embd, n_layer, n_head)).eval()
    with torch.no_grad():
        _spread_weights(model)                                  # clear favourites, not GPT-2's near-uniform start
    return model


def _generate_inputs(rng: random.Random) -> tuple:
    P = rng.randint(3, 8)
    model = _small_model(rng.randint(5, 15), P, n_layer=rng.randint(1, 2))
    ids = torch.randint(0, model.config.vocab_size, (rng.randint(1, 3), rng.randint(1, P)))
    return model, ids, rng.randint(0, 6), rng.choice([0.0, 0.0, 0.5, 1.0, 2.0])


GENERATION_LOOP = Exercise(
    name="generation_loop",
    reference=generate,
    make_inputs=_generate_inputs,
    hints=(
        "one token at a time: run the model on what you have, keep only the scores of the last position, "
        "pick a token from them, append it to every row and go again; the model never sees more than its "
        "context window",
        "feed the last n_positions tokens at most (the newest ones); at temperature zero take the highest "
        "score, else divide the scores by the temperature, turn them into probabilities with a softmax and "
        "draw one token per row with torch's multinomial; append along the time axis and return prompt "
        "and new tokens together",
    ),
    cases=(
        Case("greedy, a prompt of one token", lambda: (_small_model(), _ids(1, 1, 12), 5, 0.0)),
        Case("greedy, a batch of two prompts", lambda: (_small_model(), _ids(2, 3, 12), 4, 0.0)),
        Case("greedy, a prompt that grows past the context window of 4",
             lambda: (_small_model(n_positions=4), _ids(1, 3, 12), 5, 0.0)),
        Case("temperature 0.5, a batch of two", lambda: (_small_model(), _ids(2, 2, 12), 5, 0.5)),
        Case("no new tokens", lambda: (_small_model(), _ids(1, 3, 12), 0, 0.0)),
    ),
    mistakes=(
        Mistake("the scores of the first position used instead of those of the last", _generate_variant(0)),
        Mistake("the context cut to the oldest positions instead of the newest", _generate_variant(crop="first")),
        Mistake("the scores multiplied by the temperature instead of divided by it",
                _generate_variant(temperature="multiply")),
    ),
    noun="ids",
)


def check_generation_loop(fn: Callable[..., torch.Tensor], quiet: bool = False) -> CheckResult:
    """`fn(model, ids, n_new, temperature=0.0)` appends n_new tokens, greedy at temperature 0, else sampled."""
    return GENERATION_LOOP.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise 1: one loss per sequence
def _ref_sequence_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits (B, T, V), labels (B, T) -> (B,): each sequence's mean next-token loss over its counted labels.

    Position t is scored on labels[:, t + 1]; a label of -100 is not counted (padding, a prompt).
    """
    B, T, V = logits.shape
    per_token = F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1),
                                reduction="none", ignore_index=-100).view(B, T - 1)   # (B, T-1), 0 where ignored
    counted = (labels[:, 1:] != -100).sum(dim=1)                # (B,): the labels each row is scored on
    return per_token.sum(dim=1) / counted                        # (B,)


def _loss_inputs(rng: random.Random) -> tuple[torch.Tensor, torch.Tensor]:
    B, T, V = rng.randint(1, 4), rng.randint(2, 9), rng.randint(5, 40)
    labels = torch.randint(0, V, (B, T))
    for row in range(B):                                        # padding at the end, a prompt at the start
        pad, prompt = rng.randint(0, T - 2), rng.randint(0, 2)
        labels[row, T - pad:] = -100
        labels[row, :prompt] = -100
    return torch.randn(B, T, V) * 3, labels


def _seq_loss_by_positions(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Divides by the number of scored positions, T - 1, whether ignored or not."""
    B, T, V = logits.shape
    per_token = F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), reduction="none")
    return per_token.view(B, T - 1).sum(1) / (T - 1)


def _seq_loss_unshifted(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    B, T, V = logits.shape
    per_token = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), reduction="none").view(B, T)
    return per_token.sum(1) / (labels != -100).sum(1)


def _seq_loss_pooled(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    V = logits.size(-1)
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1))


def _one_per_row(got: Any) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"your losses are a {type(got).__name__}; return a tensor with one loss per sequence"
    return None


SEQUENCE_LOSS = Exercise(
    name="sequence_loss",
    reference=_ref_sequence_loss,
    make_inputs=_loss_inputs,
    hints=(
        "the shift is the same as in the model's loss; what changes is the averaging: each row is averaged "
        "on its own, and only over the labels that count",
        "score every position on the next label without reducing, which gives zero where the label is "
        "minus one hundred; then sum each row and divide by the number of labels that row really has "
        "(after the shift), not by the length of the row",
    ),
    cases=(
        Case("one row of four tokens, no label ignored",
             lambda: (_randn(1, 4, 5, scale=3), torch.tensor([[1, 4, 0, 2]]))),
        Case("two rows, the second padded with -100 at its end",
             lambda: (_randn(2, 5, 6, scale=3), torch.tensor([[0, 1, 2, 3, 4], [5, 4, 3, -100, -100]]))),
        Case("a prompt of two ignored labels, then three that count",
             lambda: (_randn(1, 5, 7, scale=2), torch.tensor([[-100, -100, 3, 1, 6]]))),
        Case("rows with a single label that counts",
             lambda: (_randn(3, 3, 4, scale=2), torch.tensor([[1, 2, -100], [0, -100, 3], [2, 2, 2]]))),
    ),
    mistakes=(
        Mistake("each row divided by its number of positions, the ignored ones included", _seq_loss_by_positions),
        Mistake("each position scored on its own label instead of the next one", _seq_loss_unshifted),
        Mistake("one mean over the whole batch instead of one per sequence", _seq_loss_pooled),
    ),
    contract=_one_per_row,
    noun="losses",
    rtol=1e-5, atol=1e-5,
)


def check_sequence_loss(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], quiet: bool = False
                        ) -> CheckResult:
    """`fn(logits, labels)` returns (B,): each sequence's mean next-token loss, -100 labels not counted."""
    return SEQUENCE_LOSS.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise 2: the hub file's names
def _ref_bare_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """GPT-2 as the hub's model.safetensors stores it (GPT2Model's names: no "transformer." in front, Conv1D
    weights (in, out), mask buffers h.N.attn.bias, no lm_head) -> the state dict of your GPT."""
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    out = {}
    for name, t in sd.items():
        if name.endswith((".attn.bias", ".attn.masked_bias")):
            continue                                                # mask buffers: not weights
        out["transformer." + name] = t.t() if name.endswith(conv1d) else t
    out["lm_head.weight"] = out["transformer.wte.weight"]           # the tied head: the same matrix
    return out


def _bare_variant(prefix: str = "transformer.", head: bool = True, transpose: bool = True,
                  drop: bool = True) -> Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]:
    def wrong(sd):
        out = {}
        for name, t in sd.items():
            if drop and name.endswith((".attn.bias", ".attn.masked_bias")):
                continue
            out[prefix + name] = t.t() if transpose and name.endswith(CONV1D) else t
        if head:
            out["lm_head.weight"] = out[prefix + "wte.weight"]
        return out

    return wrong


def _bare_inputs(rng: random.Random) -> tuple[_StateDict]:
    n_head = rng.choice([1, 2])
    return (_hf_state_dict(rng.randint(1, 3), n_head * rng.choice([2, 4]), n_head, rng.randint(5, 20),
                           rng.randint(3, 8), buffers=True, prefix="", head=False),)


BARE_STATE_DICT = Exercise(
    name="bare_state_dict",
    reference=_ref_bare_state_dict,
    make_inputs=_bare_inputs,
    hints=(
        "compare the two lists of names: the file holds the inner model only, so its names lack the part "
        "your GPT puts in front of them, it has buffers that are not weights, and it has no head at all",
        "put the module name of the inner model and a dot in front of every name, transpose the four "
        "Conv1D matrices, leave out the mask buffers, and give the head the token embedding's matrix, "
        "since your GPT names the tied matrix twice",
    ),
    cases=(
        Case("one layer", lambda: (_hf_state_dict(buffers=True, prefix="", head=False),)),
        Case("two layers, one head", lambda: (_hf_state_dict(2, 4, 1, buffers=True, prefix="", head=False),)),
        Case("a vocabulary of five, two positions",
             lambda: (_hf_state_dict(1, 4, 2, 5, 2, buffers=True, prefix="", head=False),)),
    ),
    mistakes=(
        Mistake("the head missing (it is tied, but your GPT's state dict names it too)", _bare_variant(head=False)),
        Mistake("the names left as the file has them, without the inner model's name in front",
                _bare_variant(prefix="")),
        Mistake("the Conv1D weights not transposed", _bare_variant(transpose=False)),
        Mistake("the mask buffers kept", _bare_variant(drop=False)),
    ),
    noun="state dict",
)


def check_bare_state_dict(fn: Callable[[Mapping[str, torch.Tensor]], Mapping[str, torch.Tensor]],
                          quiet: bool = False) -> CheckResult:
    """`fn(sd)` turns the hub file's GPT2Model state dict (no prefix, Conv1D, mask buffers, no head) into
    your GPT's state dict."""
    return BARE_STATE_DICT.check(fn, quiet=quiet)


# --------------------------------------------------------------------- exercise 3: a variant's parameters
def _solution_variant_parameter_count(config: GPTConfig) -> int:
    """GPT(config)'s parameters from its numbers: the MLP's width n_inner (None: 4 n_embd), biases in every
    Linear layer and LayerNorm or in none (bias), the head tied to wte or a matrix of its own."""
    V, P, C, L = config.vocab_size, config.n_positions, config.n_embd, config.n_layer
    H = config.n_inner or 4 * C                     # the MLP's hidden width
    b = 1 if config.bias else 0                     # 1: every Linear and LayerNorm has a bias; 0: none has
    norm = C + b * C                                # a LayerNorm: its weight, and its bias if any
    per_block = (2 * norm                           # ln_1, ln_2
                 + C * 3 * C + b * 3 * C            # attn.c_attn
                 + C * C + b * C                    # attn.c_proj
                 + C * H + b * H                    # mlp.c_fc
                 + H * C + b * C)                   # mlp.c_proj
    head = 0 if config.tie_word_embeddings else V * C   # lm_head has no bias either way
    return V * C + P * C + L * per_block + norm + head


def _count_variant(norm_bias: bool = False, head_bias: bool = False, width: str = "n_inner") -> Callable[..., int]:
    def wrong(config):
        count = _solution_variant_parameter_count(config)
        C = config.n_embd
        if norm_bias and not config.bias:
            count += (2 * config.n_layer + 1) * C           # LayerNorm biases counted though there are none
        if head_bias and not config.tie_word_embeddings:
            count += config.vocab_size
        if width == "4C" and config.n_inner is not None:
            b = 1 if config.bias else 0
            count += config.n_layer * (2 * C + b) * (4 * C - config.n_inner)
        return count

    return wrong


def _variant_inputs(rng: random.Random) -> tuple[GPTConfig]:
    n_head = rng.choice([1, 2, 3, 4, 12])
    C = n_head * rng.choice([8, 16, 64])
    return (_ShownConfig(vocab_size=rng.randint(10, 60000), n_positions=rng.randint(8, 2048), n_embd=C,
                         n_layer=rng.randint(1, 12), n_head=n_head, bias=rng.random() < 0.5,
                         n_inner=rng.choice([None, C, 2 * C, 3 * C + 8]), tie_word_embeddings=rng.random() < 0.5),)


def _whole_number(got: Any) -> str | None:
    value = as_number(got)
    if value is None or float(value) != int(value):
        return f"your result is {describe(got, 80)}; return a whole number"
    return None


VARIANT_PARAMETER_COUNT = Exercise(
    name="variant_parameter_count",
    reference=count_parameters,
    solution=_solution_variant_parameter_count,
    make_inputs=_variant_inputs,
    hints=(
        "the layers stay the same; what the switches change is the width of the MLP's hidden layer, whether "
        "any bias exists (in the Linear layers and the LayerNorms alike), and whether the head has a "
        "matrix of its own",
        "a Linear layer from a to b has a times b weights, plus b biases when there are biases; a "
        "LayerNorm over C channels has C weights, plus C biases when there are biases. The MLP goes from "
        "C to its hidden width and back. An untied head adds one vocabulary-by-width matrix, never a bias",
    ),
    cases=(
        Case("GPT-2 small with an untied head",
             (_ShownConfig(vocab_size=50257, n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                           tie_word_embeddings=False),)),
        Case("no biases anywhere", (_ShownConfig(vocab_size=100, n_positions=16, n_embd=24, n_layer=2, n_head=3,
                                                 bias=False),)),
        Case("an MLP as wide as the stream", (_ShownConfig(vocab_size=10, n_positions=8, n_embd=8, n_layer=1,
                                                           n_head=1, n_inner=8),)),
        Case("every switch changed: no biases, an untied head, an MLP three times as wide",
             (_ShownConfig(vocab_size=50, n_positions=32, n_embd=16, n_layer=3, n_head=2, bias=False,
                           tie_word_embeddings=False, n_inner=48),)),
    ),
    mistakes=(
        Mistake("the LayerNorms' biases counted when the model has no biases", _count_variant(norm_bias=True)),
        Mistake("the untied head given a bias", _count_variant(head_bias=True)),
        Mistake("the MLP counted four times as wide as the stream whatever its hidden width is",
                _count_variant(width="4C")),
    ),
    contract=_whole_number,
)


def check_variant_parameter_count(fn: Callable[[GPTConfig], int], quiet: bool = False) -> CheckResult:
    """`fn(config)` returns the number of parameters of `GPT(config)` for any bias, n_inner and
    tie_word_embeddings (the other switches at GPT-2's defaults)."""
    return VARIANT_PARAMETER_COUNT.check(fn, quiet=quiet)
