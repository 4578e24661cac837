"""The learner pieces of the notebooks, for the tests: one wrong piece per notebook, and the helpers
that read what a run printed. The convention is docs/ARCHITECTURE.md's ("Learner pieces").

A notebook has learner pieces when it has a reference cell (`classroom.reference_cells`). Every
such notebook needs an entry in `WRONG_PIECES`: the name of one piece and a wrong definition of it
(a whole ``def``/``class``, a plausible learner's mistake that its check rejects). The tests put
it in place of that piece in the teacher's version and run the notebook: it must go on with the
reference for that piece (one line says so), with the learner's pieces for the others, and show
no traceback.
"""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import nbformat

from course_lib import classroom

CHOICE = "→ going on with "  # how each choose() line starts

WRONG_PIECES: dict[str, tuple[str, str]] = {
    # notebook stem: (the piece's name, a wrong definition of it)
    "03_attention": ("attention", '''def attention(q, k, v, dropout=None):
    """Forgot the mask: every query also sees the keys after it."""
    weights = (q @ k.transpose(-2, -1) / q.size(-1) ** 0.5).softmax(dim=-1)
    if dropout is not None:
        weights = dropout(weights)
    return weights @ v
'''),
    "01_tokenization": ("Tokenizer", '''class Tokenizer:
    """Merges the leftmost pair that has a merge, not the one learned earliest."""

    def __init__(self, vocab, merges, pattern=SPLIT_PATTERN):
        self.vocab = vocab
        self.merges = merges
        self.pattern = pattern
        self.byte_id = {b[0]: i for i, b in vocab.items() if len(b) == 1}

    @classmethod
    def train(cls, text, vocab_size, pattern=SPLIT_PATTERN):
        vocab = {i: bytes([b]) for i, b in enumerate(bytes_to_unicode())}
        byte_id = {b[0]: i for i, b in vocab.items()}
        pieces = Counter(regex.findall(pattern, text))
        chunks = [[byte_id[b] for b in piece.encode("utf-8")] for piece in pieces]
        weights = list(pieces.values())
        merges = {}
        for new_id in range(256, vocab_size):
            counts = Counter()
            for ids, weight in zip(chunks, weights):
                for pair, n in count_pairs(ids).items():
                    counts[pair] += n * weight
            if not counts:
                break
            pair = min(counts, key=lambda p: (-counts[p], p))
            merges[pair] = new_id
            vocab[new_id] = vocab[pair[0]] + vocab[pair[1]]
            chunks = [apply_merge(ids, pair, new_id) for ids in chunks]
        return cls(vocab, merges, pattern)

    def encode(self, text):
        ids = []
        for piece in regex.findall(self.pattern, text):
            chunk = [self.byte_id[b] for b in piece.encode("utf-8")]
            while found := [p for p in zip(chunk, chunk[1:]) if p in self.merges]:
                chunk = apply_merge(chunk, found[0], self.merges[found[0]])
            ids.extend(chunk)
        return ids

    def decode(self, ids):
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")
'''),
    "02_data_and_embeddings": ("TokenDataset", '''class TokenDataset(Dataset):
    """Windows of seq_len ids: one window too many, and the last one short."""

    def __init__(self, ids, seq_len, stride=None):
        self.ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        self.seq_len = seq_len
        self.stride = stride or seq_len

    def __len__(self):
        return max(0, (len(self.ids) - self.seq_len) // self.stride + 1)

    def __getitem__(self, i):
        chunk = self.ids[i * self.stride : i * self.stride + self.seq_len + 1]
        return chunk[:-1], chunk[1:]
'''),
    "04_transformer_block": ("Block", '''class Block(nn.Module):
    """Post-LN: the LayerNorms after the residual additions, not before the sub-layers."""

    def __init__(self, config):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = CausalSelfAttention(config.n_embd, config.n_head, config.dropout)
        self.ln_2 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(self, x):
        x = self.ln_1(x + self.attn(x)[0])
        return self.ln_2(x + self.mlp(x))
'''),
    "05_gpt2_model": ("convert_hf_weights", '''def convert_hf_weights(hf_state_dict):
    """Transposes every matrix, the embeddings too."""
    return {name: (t.t() if t.dim() == 2 else t) for name, t in hf_state_dict.items()
            if not name.endswith((".attn.bias", ".attn.masked_bias"))}
'''),
    "06_training": ("train_step",
                    '''def train_step(model, optimizer, batches, lr, grad_clip, amp_dtype=None, scaler=None):
    """Forgot to divide each micro-batch's loss by their number: the gradient of the sum, not the mean."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    total = 0.0
    for x, y in batches:
        loss = lm_loss(model, x, y, amp_dtype)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        total += loss.item() / len(batches)
    if scaler is not None:
        scaler.unscale_(optimizer)
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip > 0 else float("inf"))
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total, norm.item()
'''),
    "11_beyond_gpt2": ("apply_rope", '''def apply_rope(x, offset=0, theta=10000.0):
    """Forgot the offset: every call starts at position 0, so the tokens after a cache sit at the wrong place."""
    T, hs = x.size(-2), x.size(-1)
    inv_freq = 1.0 / theta ** (torch.arange(0, hs, 2).float() / hs)
    angle = torch.arange(T).float()[:, None] * inv_freq[None, :]
    a, b = x[..., : hs // 2], x[..., hs // 2:]
    return torch.cat([a * angle.cos() - b * angle.sin(), b * angle.cos() + a * angle.sin()], dim=-1)
'''),
    "08_attention_visualization": ("logit_lens", '''def logit_lens(model, ids):
    """The final LayerNorm applied to every hidden state, the last one too (it already went through it)."""
    model.eval()
    with torch.no_grad():
        ids = torch.as_tensor(ids).view(1, -1).to(next(model.parameters()).device)
        hidden = model(ids, output_hidden_states=True).hidden_states
        return torch.cat([model.lm_head(model.transformer.ln_f(h)) for h in hidden]).float().cpu()
'''),
    "09_fine_tuning": ("LoRALinear", '''class LoRALinear(nn.Module):
    def __init__(self, base, r=8, alpha=16, dropout=0.0):
        super().__init__()
        if isinstance(base, nn.Linear):
            fan_in, fan_out = base.in_features, base.out_features
        else:
            fan_in, fan_out = base.weight.shape
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.base = base.requires_grad_(False)
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        self.lora_A = nn.Parameter(torch.empty(r, fan_in, **like))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.lora_B = nn.Parameter(torch.zeros(fan_out, r, **like))
        self.lora_dropout = nn.Dropout(dropout)

    def forward(self, x):
        """Forgot the scale alpha / r."""
        return self.base(x) + (self.lora_dropout(x) @ self.lora_A.T) @ self.lora_B.T
'''),
    "07_decoding_strategies": ("accept_draft", '''def accept_draft(p, q, draft, u):
    """On a rejection, draws the next token from the target's p instead of the leftover max(0, p - q)."""
    for i in range(draft.size(0)):
        x = draft[i]
        if u[i] >= p[i, x] / q[i, x]:
            return i, p[i]
    return draft.size(0), p[-1]
'''),
}


def code_sources(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def has_pieces(path: Path) -> bool:
    """True when the notebook has at least one reference cell (so learner pieces)."""
    return bool(classroom.reference_cells(nbformat.read(path, as_version=4)))


def choose_calls(nb) -> int:
    """How many ``checks.choose(`` lines the notebook's code holds (each prints one choice line)."""
    return sum(src.count("checks.choose(") for src in code_sources(nb))


def printed(nb) -> str:
    """Everything the executed notebook's cells printed (stream outputs)."""
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                     if o.get("output_type") == "stream")


def choice_lines(nb) -> list[str]:
    return [line for line in printed(nb).splitlines() if line.startswith(CHOICE)]


def errors(nb) -> list[str]:
    """The error outputs and the printed tracebacks of an executed notebook."""
    found = [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
             for o in c.get("outputs", []) if o.get("output_type") == "error"]
    return found + [line for line in printed(nb).splitlines() if line.startswith("Traceback")]


def replace_definition(source: str, name: str, new: str) -> str:
    """`source` with the top-level ``def``/``class`` called `name` replaced by `new`."""
    tree = ast.parse(source)
    node = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == name), None)
    if node is None:
        raise ValueError(f"no top-level definition of {name!r} in this cell")
    lines = source.splitlines()
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    lines[first - 1: node.end_lineno] = new.rstrip("\n").splitlines()
    return "\n".join(lines) + ("\n" if source.endswith("\n") else "")


def with_wrong_piece(nb, name: str, new: str):
    """A copy of (teacher's) notebook `nb` whose definition of piece `name` is `new`; refused when none is found."""
    out = copy.deepcopy(nb)
    for cell in out.cells:  # the piece's own cell, solved in the teacher's version
        if cell.cell_type == "code" and classroom.TEACHER_TAG in cell.metadata.get("tags", []):
            try:
                cell.source = replace_definition(cell.source, name, new)
            except (ValueError, SyntaxError):
                continue
            return out
    raise ValueError(f"no solved cell defines the piece {name!r}")
