"""Learners' answers for every exercise: correct-but-different ones must pass, the classic
mistakes must fail on a fixed case with a message that names what is wrong.

Includes each example of issue 21: the most-frequent-first encoder, the float mask, the
in-place penalty, the 0-d lr, the Parameters decay groups, the infinite apply_merge and
the top-k ties.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import LlamaConfig
from transformers.models.llama import modeling_llama  # imported here: the first import takes longer than a check

from course_lib import checks
from course_lib.checks import _core
from course_lib.checks import nb09_finetuning as nb09
from course_lib.checks.nb01_tokenization import Tokenizer
from course_lib.checks.nb02_data import TokenDataset
from course_lib.tokenizer import apply_merge, count_pairs

NEG_INF = float("-inf")


# -- 01 tokenization ----------------------------------------------------------------------
def counter_pairs(ids):
    from collections import Counter

    return dict(Counter(zip(ids, ids[1:])))


def non_overlapping_pairs(ids):
    counts, i = {}, 0
    while i + 1 < len(ids):
        counts[(ids[i], ids[i + 1])] = counts.get((ids[i], ids[i + 1]), 0) + 1
        i += 2
    return counts


def recursive_merge(ids, pair, new_id):
    if len(ids) < 2:
        return list(ids)
    if (ids[0], ids[1]) == tuple(pair):
        return [new_id, *recursive_merge(ids[2:], pair, new_id)]
    return [ids[0], *recursive_merge(ids[1:], pair, new_id)]


def step_one_merge(ids, pair, new_id):  # steps by one after a merge
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
        else:
            out.append(ids[i])
        i += 1
    return out


def endless_merge(ids, pair, new_id):  # forgets i += 1
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
    return out


def _pieces_as_byte_ids(tok, text):
    import regex

    return [[tok.byte_id[b] for b in piece.encode("utf-8")] for piece in regex.findall(tok.pattern, text)]


class TokenizerInTableOrder(Tokenizer):  # each merge once, in the order learned: equivalent
    def encode(self, text):
        out = []
        for ids in _pieces_as_byte_ids(self, text):
            for pair, new_id in self.merges.items():
                ids = apply_merge(ids, pair, new_id)
            out += ids
        return out


class TokenizerByRank(Tokenizer):  # the rank as a position in the table, tuple results
    def encode(self, text):
        rank = {pair: r for r, pair in enumerate(self.merges)}
        out = ()
        for ids in _pieces_as_byte_ids(self, text):
            while len(ids) >= 2 and (pair := min(zip(ids, ids[1:]), key=lambda p: rank.get(p, math.inf))) in rank:
                ids = apply_merge(ids, pair, self.merges[pair])
            out += tuple(ids)
        return out


class TokenizerMostFrequentFirst(Tokenizer):  # the training rule, not the encoding rule
    def encode(self, text):
        out = []
        for ids in _pieces_as_byte_ids(self, text):
            while counts := {p: n for p, n in count_pairs(ids).items() if p in self.merges}:
                pair = max(counts, key=counts.get)
                ids = apply_merge(ids, pair, self.merges[pair])
            out += ids
        return out


class TokenizerReversedTable(Tokenizer):
    def encode(self, text):
        out = []
        for ids in _pieces_as_byte_ids(self, text):
            for pair, new_id in reversed(list(self.merges.items())):
                ids = apply_merge(ids, pair, new_id)
            out += ids
        return out


class TokenizerOnePass(Tokenizer):  # one scan from the left, merging as it goes, never again
    def encode(self, text):
        out = []
        for ids in _pieces_as_byte_ids(self, text):
            merged = []
            for i in ids:
                if merged and (merged[-1], i) in self.merges:
                    merged[-1] = self.merges[merged[-1], i]
                else:
                    merged.append(i)
            out += merged
        return out


def longest_match_by_lengths(piece, vocab):  # right: the candidates by length, from the vocabulary
    by_bytes = {b: i for i, b in vocab.items()}
    ids = []
    while piece:
        best = max((b for b in by_bytes if piece.startswith(b)), key=len)
        ids.append(by_bytes[best])
        piece = piece[len(best):]
    return ids


def longest_match_shortest_rest(piece, vocab):  # looks ahead: fewest tokens overall, not greedy
    by_bytes = {b: i for i, b in vocab.items()}
    best = {0: []}
    for end in range(1, len(piece) + 1):
        best[end] = min((best[s] + [by_bytes[piece[s:end]]] for s in range(end) if piece[s:end] in by_bytes),
                        key=len)
    return best[len(piece)]


def stream_by_codecs(ids, vocab):
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return [decoder.decode(vocab[i]) for i in ids]


def stream_each_token(ids, vocab):
    return [vocab[i].decode("utf-8", errors="replace") for i in ids]


def stream_until_it_decodes(ids, vocab):  # holds back finished characters too
    shown, pending = [], b""
    for i in ids:
        pending += vocab[i]
        try:
            shown.append(pending.decode("utf-8"))
            pending = b""
        except UnicodeDecodeError:
            shown.append("")
    return shown


GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def threes_after_split(text):  # GPT-2's split, then each number cut by hand
    import regex

    out = []
    for piece in regex.findall(GPT2_PATTERN, text):
        digits = piece.lstrip(" ")
        if digits and regex.fullmatch(r"\p{N}+", digits):
            groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
            out += [piece[: len(piece) - len(digits)] + groups[0], *groups[1:]]
        else:
            out.append(piece)
    return out


def threes_without_space(text):
    import regex

    return regex.findall(GPT2_PATTERN.replace(r" ?\p{N}+", r"\p{N}{1,3}"), text)


def threes_ascii_digits(text):
    import regex

    return regex.findall(GPT2_PATTERN.replace(r" ?\p{N}+", r" ?\d{1,3}"), text)


def threes_from_the_right(text):  # grouped like thousands separators
    import regex

    out = []
    for piece in regex.findall(GPT2_PATTERN, text):
        digits = piece.lstrip(" ")
        if digits and regex.fullmatch(r"\p{N}+", digits):
            k = len(digits) % 3 or 3
            groups = [digits[:k]] + [digits[i : i + 3] for i in range(k, len(digits), 3)]
            out += [piece[: len(piece) - len(digits)] + groups[0], *groups[1:]]
        else:
            out.append(piece)
    return out


# -- 02 data ------------------------------------------------------------------------------
class DatasetByUnfold(TokenDataset):  # every window at once, as a view
    def __len__(self):
        return len(self.ids.unfold(0, self.seq_len + 1, self.stride)) if len(self.ids) > self.seq_len else 0

    def __getitem__(self, i):
        window = self.ids.unfold(0, self.seq_len + 1, self.stride)[i]
        return window[:-1], window[1:]


class DatasetWithList(TokenDataset):  # a list of the starts, and a list as the pair
    def __len__(self):
        return len(list(range(0, len(self.ids) - self.seq_len, self.stride)))

    def __getitem__(self, i):
        s = i * self.stride
        return [self.ids[s : s + self.seq_len], self.ids[s + 1 : s + 1 + self.seq_len]]


class DatasetOfSeqLen(TokenDataset):  # windows of seq_len ids
    def __len__(self):
        return max(0, (len(self.ids) - self.seq_len) // self.stride + 1)

    def __getitem__(self, i):
        chunk = self.ids[i * self.stride : i * self.stride + self.seq_len]
        return chunk[:-1], chunk[1:]


class DatasetFloat(TokenDataset):
    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return x.float(), y.float()


def grad_by_loop(ids, grad_out, vocab_size):
    grad = torch.zeros(vocab_size, grad_out.size(-1))
    for b in range(ids.size(0)):
        for t in range(ids.size(1)):
            grad[ids[b, t]] += grad_out[b, t]
    return grad


def positions_by_loop(ids, eot_id):
    out, p = [], 0
    for i in ids:
        out.append(p)
        p = 0 if i == eot_id else p + 1
    return torch.tensor(out)


def documents_by_index(ids, eot_id):
    cuts = [-1] + [i for i, t in enumerate(ids) if t == eot_id]
    docs = [list(ids[a + 1 : b]) for a, b in zip(cuts, cuts[1:])]
    return docs + ([list(ids[cuts[-1] + 1 :])] if cuts[-1] + 1 < len(ids) else [])


def documents_grouped(ids, eot_id):  # loses the empty documents
    import itertools

    return [list(g) for is_eot, g in itertools.groupby(ids, lambda t: t == eot_id) if not is_eot]


def documents_complete_only(ids, eot_id):
    docs, current = [], []
    for t in ids:
        if t == eot_id:
            docs.append(current)
            current = []
        else:
            current.append(t)
    return docs


def groups_by_merging_sets(parents):  # right: sets of originals merged until nothing changes
    families = [set(p) for p in parents]
    changed = True
    while changed:
        changed = False
        for i in range(len(families)):
            for j in range(i + 1, len(families)):
                if families[i] & families[j] and families[i] != families[j]:
                    families[i] = families[j] = families[i] | families[j]
                    changed = True
    return [min(f) for f in families]


def overlap_with_counter(train_lines, val_lines, n):
    seen = set()
    for line in train_lines:
        w = line.split()
        seen |= set(zip(*(w[k:] for k in range(n))))
    out = []
    for line in val_lines:
        w = line.split()
        grams = set(zip(*(w[k:] for k in range(n))))
        out.append(sum(g in seen for g in grams) / len(grams) if grams else 0)
    return out


# -- 03 attention -------------------------------------------------------------------------
def sdpa_attention(q, k, v, dropout=None):  # the fused kernel when nothing is dropped: different, right
    if dropout is None or not dropout.training:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.size(-2)
    s = (q @ k.transpose(-2, -1) * q.size(-1) ** -0.5).masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), NEG_INF)
    return dropout(s.softmax(-1)) @ v


def attention_by_loop(q, k, v, dropout=None):  # one query at a time over its past keys: different, right
    rows = []
    for t in range(q.size(-2)):
        w = (q[..., t:t + 1, :] @ k[..., : t + 1, :].transpose(-2, -1) / math.sqrt(q.size(-1))).softmax(-1)
        rows.append(w)
    weights = torch.cat([F.pad(w, (0, q.size(-2) - w.size(-1))) for w in rows], dim=-2)
    return (dropout(weights) if dropout is not None else weights) @ v


def zero_filled_attention(q, k, v, dropout=None):
    T = q.size(-2)
    s = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    return s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), 0.0).softmax(-1) @ v


def sqrt_t_attention(q, k, v, dropout=None):
    T = q.size(-2)
    s = q @ k.transpose(-2, -1) / math.sqrt(T)
    return s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), NEG_INF).softmax(-1) @ v


def no_dropout_attention(q, k, v, dropout=None):  # ignores the dropout it is given
    return sdpa_attention(q, k, v)


class _AttentionStub(torch.nn.Module):  # the constructor the notebook gives
    def __init__(self, n_embd, n_head, dropout=0.0):
        super().__init__()
        self.n_head, self.n_embd = n_head, n_embd
        self.c_attn = torch.nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = torch.nn.Linear(n_embd, n_embd)
        self.attn_dropout = torch.nn.Dropout(dropout)
        self.resid_dropout = torch.nn.Dropout(dropout)


class AttentionByUnflatten(_AttentionStub):  # chunk, unflatten, flatten: different, right
    def forward(self, x):
        q, k, v = (t.unflatten(-1, (self.n_head, -1)).transpose(1, 2) for t in self.c_attn(x).chunk(3, dim=-1))
        y = sdpa_attention(q, k, v, self.attn_dropout)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).flatten(2)))


class AttentionByEinsum(_AttentionStub):  # the heads by einsum, the mask by tril: different, right
    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.reshape(B, T, self.n_head, -1) for t in self.c_attn(x).split(C, dim=-1))
        scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(C // self.n_head)
        scores = scores.masked_fill(torch.tril(torch.ones(T, T, dtype=torch.bool)) == 0, NEG_INF)
        y = torch.einsum("bhts,bshd->bthd", self.attn_dropout(scores.softmax(-1)), v).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class AttentionPlainView(_AttentionStub):  # splits the heads with a plain view
    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.reshape(B, self.n_head, T, -1) for t in self.c_attn(x).split(C, dim=-1))
        y = sdpa_attention(q, k, v, self.attn_dropout).transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class AttentionDropoutAlways(AttentionByUnflatten):  # F.dropout with training=True: drops in eval mode too
    def forward(self, x):
        return F.dropout(super().forward(x), self.resid_dropout.p, training=True)


class AttentionOtherNames(torch.nn.Module):  # its own names: the reference's weights cannot load
    def __init__(self, n_embd, n_head, dropout=0.0):
        super().__init__()
        self.n_head = n_head
        self.qkv = torch.nn.Linear(n_embd, 3 * n_embd)
        self.out = torch.nn.Linear(n_embd, n_embd)

    def forward(self, x):
        return self.out(self.qkv(x)[..., : x.size(-1)])


def window_by_loops(T, window):
    return torch.tensor([[0 <= i - j < window for j in range(T)] for i in range(T)])


def window_too_wide(T, window):
    i, j = torch.arange(T)[:, None], torch.arange(T)[None]
    return (j <= i) & (i - j <= window)


# -- 04 block -----------------------------------------------------------------------------
def ln_via_var(x, w, b, eps):
    return (x - x.mean(-1, keepdim=True)) * torch.rsqrt(x.var(-1, unbiased=False, keepdim=True) + eps) * w + b


def ln_eps_outside(x, w, b, eps):
    return (x - x.mean(-1, keepdim=True)) / (x.var(-1, unbiased=False, keepdim=True).sqrt() + eps) * w + b


def ln_unbiased(x, w, b, eps):
    return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, keepdim=True) + eps) * w + b


def gelu_sigmoid_form(x):  # tanh(z) = 2 sigmoid(2z) - 1
    return x * torch.sigmoid(2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x.pow(3)))


class _MLPStub(torch.nn.Module):  # the constructor notebook 04 gives
    def __init__(self, config):
        super().__init__()
        self.c_fc = torch.nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = torch.nn.Linear(4 * config.n_embd, config.n_embd)
        self.dropout = torch.nn.Dropout(config.dropout)


class MLPFunctional(_MLPStub):  # F.linear and PyTorch's tanh GELU: different, right
    def forward(self, x):
        h = F.gelu(F.linear(x, self.c_fc.weight, self.c_fc.bias), approximate="tanh")
        return self.dropout(F.linear(h, self.c_proj.weight, self.c_proj.bias))


class MLPDropoutOnHidden(_MLPStub):
    def forward(self, x):
        return self.c_proj(self.dropout(gelu_sigmoid_form(self.c_fc(x))))


class MLPNoDropout(_MLPStub):
    def forward(self, x):
        return self.c_proj(gelu_sigmoid_form(self.c_fc(x)))


class BlockTorchParts(torch.nn.Module):  # nn.LayerNorm and course_lib's MLP: the same names, right
    def __init__(self, config):
        from course_lib.attention import CausalSelfAttention
        from course_lib.model import MLP

        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = CausalSelfAttention(config.n_embd, config.n_head, config.dropout)
        self.ln_2 = torch.nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(self, x):
        attn_out, _cache, _weights = self.attn(self.ln_1(x))
        x = attn_out + x
        return self.mlp(self.ln_2(x)) + x


class BlockPostLN(BlockTorchParts):
    def forward(self, x):
        x = self.ln_1(x + self.attn(x)[0])
        return self.ln_2(x + self.mlp(x))


class BlockAddsTheTuple(BlockTorchParts):  # forgets that attention returns (y, cache, weights)
    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


def parallel_with_names(block, x):
    normed = block.ln_1(x)
    attn_out, _cache, _weights = block.attn(normed)
    return block.mlp(normed) + attn_out + x


def parallel_sequential(block, x):  # GPT-2's order with one LayerNorm
    x = x + block.attn(block.ln_1(x))[0]
    return x + block.mlp(block.ln_1(x))


def fold_by_diag(ln_weight, ln_bias, fc_weight, fc_bias):
    return fc_weight @ torch.diag(ln_weight), fc_bias + ln_bias @ fc_weight.T


def fold_rows(ln_weight, ln_bias, fc_weight, fc_bias):  # scales outputs instead of inputs
    return fc_weight * ln_weight[:, None], fc_bias + fc_weight @ ln_bias


def fold_in_place(ln_weight, ln_bias, fc_weight, fc_bias):
    fc_bias += fc_weight @ ln_bias
    fc_weight *= ln_weight
    return fc_weight, fc_bias


# -- 05 model -----------------------------------------------------------------------------
def count_by_layers(cfg):  # GPT-2's count, whatever the switches say
    C = cfg.n_embd
    ln = 2 * C
    attn = (C * 3 * C + 3 * C) + (C * C + C)
    mlp = (C * 4 * C + 4 * C) + (4 * C * C + C)
    return (cfg.vocab_size + cfg.n_positions) * C + cfg.n_layer * (2 * ln + attn + mlp) + ln


def count_by_meta_model(config):  # build it on the meta device and count: different, right
    from course_lib.model import GPT

    with torch.device("meta"):
        return sum(p.numel() for p in GPT(config).parameters())


class _GPTStub(torch.nn.Module):  # the constructor notebook 05 gives (its initialisation does not matter here)
    def __init__(self, config):
        from course_lib.model import Block

        super().__init__()
        self.config = config
        self.transformer = torch.nn.ModuleDict(dict(
            wte=torch.nn.Embedding(config.vocab_size, config.n_embd),
            wpe=torch.nn.Embedding(config.n_positions, config.n_embd),
            drop=torch.nn.Dropout(config.dropout),
            h=torch.nn.ModuleList(Block(config) for _ in range(config.n_layer)),
            ln_f=torch.nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon),
        ))
        self.lm_head = torch.nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight


class GPTOwnLoss(_GPTStub):  # the tied matrix used directly, the loss by log_softmax and a mask: right
    def forward(self, input_ids, labels=None):
        t = self.transformer
        x = t.drop(t.wte(input_ids) + t.wpe(torch.arange(input_ids.size(1))[None]))
        for block in t.h:
            x = block(x)[0]
        logits = t.ln_f(x) @ t.wte.weight.T
        if labels is None:
            return logits, None
        targets = labels[:, 1:]
        keep = targets != -100
        logp = logits[:, :-1].log_softmax(-1).gather(-1, targets.clamp(min=0)[..., None])[..., 0]
        return logits, -(logp * keep).sum() / keep.sum()


class GPTLogitsOnly(GPTOwnLoss):
    def forward(self, input_ids, labels=None):
        return super().forward(input_ids, labels)[0]


class GPTNoFinalNorm(_GPTStub):
    def forward(self, input_ids, labels=None):
        t = self.transformer
        x = t.drop(t.wte(input_ids) + t.wpe(torch.arange(input_ids.size(1))))
        for block in t.h:
            x = block(x)[0]
        logits = self.lm_head(x)
        loss = None if labels is None else F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten())
        return logits, loss


def convert_by_comprehension(sd):  # a dict comprehension, contiguous copies: different, right
    big = ("c_attn.weight", "c_proj.weight", "c_fc.weight")
    return {k: (v.T.contiguous() if k.endswith(big) else v) for k, v in sd.items()
            if k.split(".")[-2:] not in (["attn", "bias"], ["attn", "masked_bias"])}


def convert_in_place(sd):
    for k in [k for k in sd if k.endswith((".attn.bias", ".attn.masked_bias"))]:
        del sd[k]
    for k in sd:
        if k.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            sd[k] = sd[k].t()
    return sd


def convert_every_matrix(sd):  # the embeddings transposed too
    return {k: (v.t() if v.dim() == 2 else v) for k, v in sd.items()
            if not k.endswith((".attn.bias", ".attn.masked_bias"))}


def convert_loose_suffix(sd):  # "attn.bias" also matches c_attn.bias
    return {k: (v.t() if k.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")) else v)
            for k, v in sd.items() if not k.endswith(("attn.bias", "attn.masked_bias"))}


@torch.no_grad()
def generate_by_wpe_size(model, ids, n_new, temperature=0.0):  # the window from wpe, topk: different, right
    window = model.transformer.wpe.num_embeddings
    for _ in range(n_new):
        scores = model(ids[:, max(0, ids.size(1) - window):])[0][:, -1]
        if temperature:
            nxt = torch.multinomial((scores / temperature).softmax(-1), 1)
        else:
            nxt = scores.topk(1, dim=-1).indices
        ids = torch.cat((ids, nxt), dim=-1)
    return ids


@torch.no_grad()
def generate_no_window(model, ids, n_new, temperature=0.0):
    for _ in range(n_new):
        ids = torch.cat([ids, model(ids)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids


@torch.no_grad()
def generate_first_position(model, ids, n_new, temperature=0.0):
    for _ in range(n_new):
        scores = model(ids[:, -model.config.n_positions:])[0][:, 0]
        nxt = scores.argmax(-1, keepdim=True) if temperature == 0 else torch.multinomial(
            (scores / temperature).softmax(-1), 1)
        ids = torch.cat([ids, nxt], dim=1)
    return ids


def seq_loss_by_mask(logits, labels):  # log_softmax, gather and a mask: different, right
    targets = labels[:, 1:]
    keep = (targets != -100).float()
    logp = logits[:, :-1].log_softmax(-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return -(logp * keep).sum(1) / keep.sum(1)


def seq_loss_by_positions(logits, labels):  # the ignored labels still counted in the mean
    V = logits.size(-1)
    per = F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), reduction="none")
    return per.view(labels.size(0), -1).mean(1)


def seq_loss_pooled(logits, labels):
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten())


def bare_by_rename(sd):  # the head as a copy of wte: equal values, different, right
    out = {}
    for k, v in sd.items():
        if k.rsplit(".", 2)[-2:] in (["attn", "bias"], ["attn", "masked_bias"]):
            continue
        if k.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight")):
            v = v.transpose(0, 1)
        out[f"transformer.{k}"] = v
    out["lm_head.weight"] = out["transformer.wte.weight"].clone()
    return out


def bare_without_head(sd):
    return {k: v for k, v in bare_by_rename(sd).items() if k != "lm_head.weight"}


# -- 06 training --------------------------------------------------------------------------
def lr_as_0d_tensor(step, max_lr, min_lr, warmup_steps, total_steps):
    max_lr, min_lr = torch.tensor(max_lr), torch.tensor(min_lr)  # float32, like a tensor schedule
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + (max_lr - min_lr) * (1 + torch.cos(torch.tensor(math.pi * progress))) / 2


def lr_numpy(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return np.float64(max_lr * (step + 1) / warmup_steps)
    progress = np.clip((step - warmup_steps) / max(1, total_steps - warmup_steps), 0, 1)
    return min_lr + 0.5 * (1 + np.cos(np.pi * progress)) * (max_lr - min_lr)


def lr_zero_at_start(step, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * step / warmup_steps
    if step >= total_steps:
        return min_lr
    p = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (1 + math.cos(math.pi * p)) * (max_lr - min_lr)


def lr_to_zero(step, max_lr, min_lr, warmup_steps, total_steps):  # forgets min_lr
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    p = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1 + math.cos(math.pi * p)) * max_lr


def groups_by_ndim(model):
    params = dict(model.named_parameters())
    return sorted(n for n, p in params.items() if p.ndim > 1), sorted(n for n, p in params.items() if p.ndim <= 1)


def groups_of_parameters(model):  # what an AdamW group wants, not what the exercise asks
    return [p for p in model.parameters() if p.dim() >= 2], [p for p in model.parameters() if p.dim() < 2]


def groups_by_name(model):
    names = [n for n, _ in model.named_parameters()]
    return [n for n in names if "ln" not in n and "bias" not in n], [n for n in names if "ln" in n or "bias" in n]


def groups_from_state_dict(model):  # lists the tied head twice
    sd = model.state_dict()
    return [n for n in sd if sd[n].dim() >= 2], [n for n in sd if sd[n].dim() < 2]


def step_by_hand(model, optimizer, batches, lr, grad_clip, amp_dtype=None, scaler=None):
    """Right, written differently: clears first, one backward on the summed losses, the norm of the norms."""
    from course_lib.checks.nb06_training import lm_loss

    optimizer.zero_grad(set_to_none=True)
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss = sum(lm_loss(model, x, y, amp_dtype) for x, y in batches) / len(batches)
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if scaler is not None:
        scaler.unscale_(optimizer)
    norm = torch.stack([p.grad.norm() for p in model.parameters()]).norm()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return loss.item(), norm


def _step_like(clip_zero=False, zero=True):
    def step(model, optimizer, batches, lr, grad_clip, amp_dtype=None, scaler=None):
        from course_lib.checks.nb06_training import lm_loss

        for group in optimizer.param_groups:
            group["lr"] = lr
        total = 0.0
        for x, y in batches:
            loss = lm_loss(model, x, y, amp_dtype) / len(batches)
            (scaler.scale(loss) if scaler is not None else loss).backward()
            total += loss.item()
        if scaler is not None:
            scaler.unscale_(optimizer)
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip if grad_clip or clip_zero else 1e9)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if zero:
            optimizer.zero_grad()
        return total, norm

    return step


def wsd_by_min(step, max_lr, min_lr, warmup_steps, decay_steps, total_steps):
    warm = max_lr * (step + 1) / max(1, warmup_steps) if step < warmup_steps else max_lr
    left = (total_steps - step) / decay_steps  # 1 at the start of the decay, 0 at total_steps
    return min(warm, min_lr + max(0.0, min(1.0, left)) * (max_lr - min_lr))


def wsd_cosine(step, max_lr, min_lr, warmup_steps, decay_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    p = min(1.0, max(0.0, (step - (total_steps - decay_steps)) / decay_steps))
    return min_lr + 0.5 * (1 + math.cos(math.pi * p)) * (max_lr - min_lr)


def decay_counts_by_model(config):  # 12 C^2 in the matrices of a block, 13 C in its vectors
    C, L = config.n_embd, config.n_layer
    return (config.vocab_size + config.n_positions) * C + 12 * L * C * C, 13 * L * C + 2 * C


def decay_counts_untied(config):  # counts the head a second time
    d, n = decay_counts_by_model(config)
    return d + config.vocab_size * config.n_embd, n


def decay_counts_no_wpe(config):  # forgets that the position embedding is a matrix
    d, n = decay_counts_by_model(config)
    return d - config.n_positions * config.n_embd, n + config.n_positions * config.n_embd


def weights_as_tensor(tokens):
    t = torch.tensor(tokens, dtype=torch.float64)
    return t / t.sum()


def clip_by_cat(grads, max_norm):
    norm = torch.cat([g.flatten() for g in grads]).norm()
    return [g * torch.clamp(max_norm / (norm + 1e-6), max=1.0) for g in grads]


def clip_each(grads, max_norm):
    return [g * min(1.0, max_norm / (g.norm().item() + 1e-6)) for g in grads]


def clip_always(grads, max_norm):  # scales small gradients up to the limit
    norm = torch.cat([g.flatten() for g in grads]).norm()
    return [g * max_norm / norm for g in grads]


# -- 07 decoding --------------------------------------------------------------------------
def top_k_by_sort(scores, k):
    kth = scores.sort(-1, descending=True).values[:, k - 1 : k]
    return torch.where(scores >= kth, scores, torch.full_like(scores, NEG_INF))


def top_k_scatter(scores, k):  # keeps exactly k tokens: wrong on ties
    v, i = scores.topk(k)
    return torch.full_like(scores, NEG_INF).scatter(1, i, v)


def top_k_in_place(scores, k):
    kth = scores.topk(k).values[:, -1:]
    return scores.masked_fill_(scores < kth, NEG_INF)


def top_p_descending(scores, p):
    probs, order = scores.softmax(-1).sort(-1, descending=True)
    before = probs.cumsum(-1) - probs
    remove = before >= p
    remove[:, 0] = False
    return scores.masked_fill(remove.scatter(1, order, remove), NEG_INF)


def top_p_drops_crossing(scores, p):
    probs, order = scores.softmax(-1).sort(-1, descending=True)
    remove = probs.cumsum(-1) > p
    remove[:, 0] = False
    return scores.masked_fill(remove.scatter(1, order, remove), NEG_INF)


def penalty_loop(input_ids, scores, penalty):
    out = scores.clone()
    for b in range(scores.size(0)):
        for t in set(input_ids[b].tolist()):
            s = out[b, t]
            out[b, t] = s * penalty if s < 0 else s / penalty
    return out


def penalty_in_place(input_ids, scores, penalty):
    seen = scores.gather(1, input_ids)
    seen = torch.where(seen < 0, seen * penalty, seen / penalty)
    return scores.scatter_(1, input_ids, seen)


def penalty_divides_all(input_ids, scores, penalty):
    return scores.scatter(1, input_ids, scores.gather(1, input_ids) / penalty)


def penalty_per_occurrence(input_ids, scores, penalty):
    out = scores.clone()
    for b in range(scores.size(0)):
        for t in input_ids[b].tolist():
            out[b, t] = out[b, t] * penalty if out[b, t] < 0 else out[b, t] / penalty
    return out


# -- 08 visualization ---------------------------------------------------------------------
def prev_by_loop(att):
    T = att.size(-1)
    return torch.stack([att[..., i, i - 1] for i in range(1, T)], -1).mean(-1)


def prev_over_all_queries(att):
    return att.diagonal(offset=-1, dim1=-2, dim2=-1).sum(-1) / att.size(-1)


def induction_by_loop(att, period):
    T = att.size(-1)
    return torch.stack([att[..., t, t - period + 1] for t in range(period, T)], -1).mean(-1)


def induction_on_copy(att, period):
    T = att.size(-1)
    return torch.stack([att[..., t, t - period] for t in range(period, T)], -1).mean(-1)


def induction_fixed_length(att, period):  # assumes T == 2 * period
    return att[..., period:, 1 : period + 1].diagonal(dim1=-2, dim2=-1).mean(-1)


def entropy_entr(att):
    return torch.special.entr(att).sum(-1).mean(-1)


def entropy_nan(att):
    return -(att * att.log()).sum(-1).mean(-1)


def entropy_bits(att):
    return -(att * torch.log2(att.clamp_min(1e-12))).sum(-1).mean(-1)


@torch.no_grad()
def lens_by_hand(model, ids):  # the LayerNorm written out, the unembedding as a product
    model.eval()
    hidden = model(torch.as_tensor(ids).view(1, -1), output_hidden_states=True).hidden_states
    ln, W = model.transformer.ln_f, model.lm_head.weight
    rows = [((h - h.mean(-1, keepdim=True)) / (h.var(-1, unbiased=False, keepdim=True) + ln.eps).sqrt()
             * ln.weight + ln.bias) @ W.T for h in hidden[:-1]]
    return torch.cat(rows + [hidden[-1] @ W.T])


@torch.no_grad()
def lens_norm_twice(model, ids):
    model.eval()
    hidden = model(torch.as_tensor(ids).view(1, -1), output_hidden_states=True).hidden_states
    return torch.cat([model.lm_head(model.transformer.ln_f(h)) for h in hidden])


@torch.no_grad()
def lens_in_training_mode(model, ids):  # dropout still on
    hidden = model(torch.as_tensor(ids).view(1, -1), output_hidden_states=True).hidden_states
    ln_f, head = model.transformer.ln_f, model.lm_head
    return torch.cat([head(ln_f(h)) for h in hidden[:-1]] + [head(hidden[-1])])


def ablate_by_mask(model, layer, head):
    n_head = model.config.n_head

    def hook(module, args):
        z = args[0]
        keep = torch.ones(n_head, z.size(-1) // n_head, dtype=z.dtype)
        keep[head] = 0
        return (z * keep.flatten(),)

    return model.transformer.h[layer].attn.c_proj.register_forward_pre_hook(hook)


def ablate_no_handle(model, layer, head):  # registers the hook, returns nothing
    n_head = model.config.n_head

    def hook(module, args):
        z, hs = args[0].clone(), args[0].size(-1) // n_head
        z[..., head * hs:(head + 1) * hs] = 0
        return (z,)

    model.transformer.h[layer].attn.c_proj.register_forward_pre_hook(hook)


def ablate_after_c_proj(model, layer, head):
    n_head = model.config.n_head

    def hook(module, args, out):
        hs = out.size(-1) // n_head
        return torch.cat([out[..., :head * hs], torch.zeros_like(out[..., head * hs:(head + 1) * hs]),
                          out[..., (head + 1) * hs:]], dim=-1)

    return model.transformer.h[layer].attn.c_proj.register_forward_hook(hook)


@torch.no_grad()
def dla_by_weight_slices(model, ids, token):  # each head's rows of c_proj's weight, Linear or Conv1D
    L, H = model.config.n_layer, model.config.n_head
    seen = {}
    hooks = [model.transformer.h[i].attn.c_proj.register_forward_pre_hook(
        lambda m, a, i=i: seen.__setitem__(i, a[0][0, -1])) for i in range(L)]
    hooks.append(model.transformer.ln_f.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0][0, -1])))
    model.eval()
    model(torch.as_tensor(ids).view(1, -1))
    for h in hooks:
        h.remove()
    ln = model.transformer.ln_f
    x = seen["x"]
    sd = ((x - x.mean()) ** 2).mean().add(ln.eps).sqrt()
    out = torch.zeros(L, H)
    for i in range(L):
        c_proj = model.transformer.h[i].attn.c_proj
        W = c_proj.weight if isinstance(c_proj, torch.nn.Linear) else c_proj.weight.T  # (out, in)
        hs = W.size(1) // H
        for h in range(H):
            o = W[:, h * hs:(h + 1) * hs] @ seen[i][h * hs:(h + 1) * hs]
            out[i, h] = ((o - o.mean()) / sd * ln.weight) @ model.lm_head.weight[token]
    return out


def dla_unbiased_variance(model, ids, token):  # the unbiased variance: not what LayerNorm divides by
    from course_lib.checks.nb08_visualization import direct_logit_attribution

    C = model.config.n_embd
    return direct_logit_attribution(model, ids, token) * ((C - 1) / C) ** 0.5


def dla_no_scale(model, ids, token):
    from course_lib.checks.nb08_visualization import _dla_variant

    return _dla_variant(no_scale=True)(model, ids, token)


@torch.no_grad()
def patch_by_view(model, clean_ids, corrupt_ids, layer, head):
    H = model.config.n_head
    c_proj = model.transformer.h[layer].attn.c_proj
    saved = []
    model.eval()
    handle = c_proj.register_forward_pre_hook(lambda m, a: saved.append(a[0]))
    model(torch.as_tensor(clean_ids)[None])
    handle.remove()

    def patch(module, args):
        z = args[0]
        B, T, C = z.shape
        z = z.view(B, T, H, C // H).clone()
        z[:, :, head] = saved[0].view(B, T, H, C // H)[:, :, head]
        return (z.view(B, T, C),)

    handle = c_proj.register_forward_pre_hook(patch)
    try:
        return model(torch.as_tensor(corrupt_ids)[None]).logits[0]
    finally:
        handle.remove()


def patch_left_on(model, clean_ids, corrupt_ids, layer, head):
    from course_lib.checks.nb08_visualization import _patch_left_on

    return _patch_left_on(model, clean_ids, corrupt_ids, layer, head)


# -- 09 fine-tuning -----------------------------------------------------------------------
class LoRAByFLinear(nb09.LoRALinear):  # F.linear, the scale folded into B
    def forward(self, x):
        return self.base(x) + F.linear(F.linear(self.lora_dropout(x), self.lora_A), self.lora_B * self.scaling)


class LoRANotScaled(nb09.LoRALinear):
    def forward(self, x):
        return self.base(x) + self.lora_dropout(x) @ self.lora_A.T @ self.lora_B.T


class LoRADropoutOnBoth(nb09.LoRALinear):
    def forward(self, x):
        x = self.lora_dropout(x)
        return self.base(x) + self.scaling * (x @ self.lora_A.T) @ self.lora_B.T


def swap_recursive(model, targets, r=8, alpha=16):  # walks the children itself, freezing as it goes
    from transformers.pytorch_utils import Conv1D

    def visit(module):
        for name, child in list(module.named_children()):
            if name in targets and isinstance(child, (torch.nn.Linear, Conv1D)):
                setattr(module, name, nb09.LoRALinear(child, r=r, alpha=alpha))
            else:
                visit(child)

    model.requires_grad_(False)
    visit(model)
    return model


def swap_substring(model, targets, r=8, alpha=16):  # "proj" in "out_proj"
    from transformers.pytorch_utils import Conv1D

    model.requires_grad_(False)
    for name, module in [(n, m) for n, m in model.named_modules()
                         if any(t in n for t in targets) and isinstance(m, (torch.nn.Linear, Conv1D))]:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, nb09.LoRALinear(module, r=r, alpha=alpha))
    return model


def swap_not_frozen(model, targets, r=8, alpha=16):
    from transformers.pytorch_utils import Conv1D

    for name, module in [(n, m) for n, m in model.named_modules()
                         if n.split(".")[-1] in targets and isinstance(m, (torch.nn.Linear, Conv1D))]:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, nb09.LoRALinear(module, r=r, alpha=alpha))
    return model


def lora_count_loop(n_layer, shapes, r):
    total = 0
    for _ in range(n_layer):
        for fan_in, fan_out in shapes:
            total += r * fan_in + fan_out * r
    return total


def lora_count_product(n_layer, shapes, r):
    return n_layer * sum(r * i * o for i, o in shapes)


def state_by_loop(shapes, optimizer):
    total = 0
    for shape in shapes:
        rows, cols = shape if len(shape) == 2 else (shape[0], None)
        if optimizer == "adafactor":
            total += rows + cols if cols is not None else rows
        elif optimizer != "sgd":
            total += (2 if optimizer == "adamw" else 1) * rows * (cols or 1)
    return total


def state_adafactor_full(shapes, optimizer):
    per = {"sgd": 0, "momentum": 1, "adamw": 2, "adafactor": 1}[optimizer]
    return per * sum(math.prod(s) for s in shapes)


def dora_by_normalize(W, A, B, alpha, magnitude):
    merged = torch.addmm(W, B, A, alpha=alpha / A.shape[0])
    return F.normalize(merged, dim=1) * magnitude.unsqueeze(1)


def dora_by_columns(W, A, B, alpha, magnitude):
    merged = W + alpha / A.shape[0] * B @ A
    return magnitude[:, None] * merged / merged.norm(dim=0, keepdim=True)


def labels_by_comprehension(prompt_ids, response_ids, length, pad_id):
    ids = [*prompt_ids, *response_ids] + [pad_id] * (length - len(prompt_ids) - len(response_ids))
    keep = range(len(prompt_ids), len(prompt_ids) + len(response_ids))
    return ids, [t if i in keep else -100 for i, t in enumerate(ids)]


def labels_pre_shifted(prompt_ids, response_ids, length, pad_id):  # shifts what the model shifts itself
    ids, labels = labels_by_comprehension(prompt_ids, response_ids, length, pad_id)
    return ids, labels[1:] + [-100]


def labels_pads_learned(prompt_ids, response_ids, length, pad_id):  # padding labelled with the pad id
    ids = [*prompt_ids, *response_ids] + [pad_id] * (length - len(prompt_ids) - len(response_ids))
    return ids, [-100] * len(prompt_ids) + ids[len(prompt_ids):]


# -- 10 scaling ---------------------------------------------------------------------------
def flops_expanded(config, seq_len):
    C, L, V = config.n_embd, config.n_layer, config.vocab_size
    return 6 * (L * (12 * C * C + 13 * C) + 2 * C + V * C) + 12 * L * seq_len * C


def flops_n_positions(config, seq_len):
    from course_lib.scaling import non_embedding_params

    return 6 * non_embedding_params(config) + 12 * config.n_layer * config.n_positions * config.n_embd


def hours_from_tokens_per_second(n_tokens, flops_per_token, peak_flops, mfu, n_gpus):
    tokens_per_s = n_gpus * mfu * peak_flops / flops_per_token  # what all the GPUs train each second
    return n_tokens / tokens_per_s / 60 / 60


def hours_numpy(n_tokens, flops_per_token, peak_flops, mfu, n_gpus):
    return np.float64(n_tokens) * flops_per_token / (np.float64(n_gpus) * peak_flops * mfu) / 3600


def hours_one_gpu(n_tokens, flops_per_token, peak_flops, mfu, n_gpus):  # the GPUs forgotten
    return n_tokens * flops_per_token / (peak_flops * mfu) / 3600


def hours_in_seconds(n_tokens, flops_per_token, peak_flops, mfu, n_gpus):
    return n_tokens * flops_per_token / (n_gpus * peak_flops * mfu)


def hours_percent(n_tokens, flops_per_token, peak_flops, mfu, n_gpus):  # the fraction taken as a percentage
    return n_tokens * flops_per_token / (n_gpus * peak_flops * mfu * 100) / 3600


def padded_by_ceil(vocab_size, multiple):
    return math.ceil(vocab_size / multiple) * multiple


def padded_by_modulo(vocab_size, multiple):
    return vocab_size + (-vocab_size) % multiple


def padded_nearest(vocab_size, multiple):  # rounds 50,257 down to 50,240
    return round(vocab_size / multiple) * multiple


def padded_always_grows(vocab_size, multiple):  # adds a tile to a size that is already a multiple
    return (vocab_size // multiple + 1) * multiple


def padded_float(vocab_size, multiple):
    return vocab_size / multiple * multiple


def shard_loop(global_order, rank, world_size):
    n = len(global_order) // world_size
    return [global_order[rank + i * world_size] for i in range(n)]


def shard_ragged(global_order, rank, world_size):
    return global_order[rank::world_size]


def shard_positions(global_order, rank, world_size):
    return list(range(rank, len(global_order), world_size))[: len(global_order) // world_size]


def running_mean_by_matrix(x):  # the (T, T) averaging matrix: different, right
    T = x.size(1)
    w = torch.ones(T, T).tril()
    return (w / w.sum(1, keepdim=True)) @ x


def running_mean_over_T(x):  # divides every prefix sum by T
    return x.cumsum(1) / x.size(1)


def running_mean_channels(x):  # accumulates along the channels
    return x.cumsum(-1) / torch.arange(1, x.size(-1) + 1)


def mha_einsum(x, w_q, w_k, w_v):  # one batched product for all heads
    q, k, v = (torch.einsum("btc,hcs->bhts", x, w) for w in (w_q, w_k, w_v))
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
    return y.transpose(1, 2).flatten(2)


def mha_scale_by_C(x, w_q, w_k, w_v):
    q, k, v = (x.unsqueeze(1) @ w for w in (w_q, w_k, w_v))
    T = x.size(1)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    s = (q @ k.transpose(-2, -1) / math.sqrt(x.size(-1))).masked_fill(~causal, NEG_INF)
    return (s.softmax(-1) @ v).transpose(1, 2).flatten(2)


def mha_heads_last(x, w_q, w_k, w_v):  # flattens (hs, nh): channels of the heads interleaved
    y = mha_einsum(x, w_q, w_k, w_v).unflatten(-1, (w_q.size(0), -1))
    return y.transpose(-2, -1).flatten(2)


def conv1d_mlp_linear(x, w_fc, b_fc, w_proj, b_proj):  # F.linear on the transposed weights: right
    h = F.gelu(F.linear(x, w_fc.t(), b_fc), approximate="tanh")
    return F.linear(h, w_proj.t(), b_proj)


def conv1d_mlp_transposed(x, w_fc, b_fc, w_proj, b_proj):  # reads Conv1D weights as nn.Linear's
    return F.linear(F.gelu(F.linear(x, w_fc, b_fc), approximate="tanh"), w_proj, b_proj)


def conv1d_mlp_erf(x, w_fc, b_fc, w_proj, b_proj):
    return F.gelu(x @ w_fc + b_fc) @ w_proj + b_proj

# -- 11 beyond GPT-2 ----------------------------------------------------------------------
def rms_by_rsqrt(x, weight, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def rms_by_course_lib(x, weight, eps=1e-6):
    from course_lib.model import RMSNorm

    norm = RMSNorm(x.size(-1), eps=eps)
    with torch.no_grad():
        norm.weight.copy_(weight)
        return norm(x)


def rms_by_transformers(x, weight, eps=1e-6):
    norm = modeling_llama.LlamaRMSNorm(x.size(-1), eps=eps)
    with torch.no_grad():
        norm.weight.copy_(weight)
        return norm(x)


def rms_minus_mean(x, weight, eps=1e-6):  # LayerNorm without its bias: subtracts the mean
    return F.layer_norm(x, x.shape[-1:], weight, None, eps)


def rms_eps_outside(x, weight, eps=1e-6):
    return x / (x.pow(2).mean(-1, keepdim=True).sqrt() + eps) * weight


def rms_whole_tensor(x, weight, eps=1e-6):
    return x / torch.sqrt(x.pow(2).mean() + eps) * weight


def rms_no_default(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def _freqs(hs, theta):
    return 1.0 / theta ** (torch.arange(0, hs, 2).float() / hs)


def rope_complex(x, offset=0, theta=10000.0):  # the halves as the real and imaginary parts of complex numbers
    T, hs = x.shape[-2], x.shape[-1]
    turn = torch.polar(torch.ones(T, hs // 2), torch.arange(offset, offset + T).float()[:, None] * _freqs(hs, theta))
    z = torch.complex(x[..., : hs // 2], x[..., hs // 2 :]) * turn
    return torch.cat([z.real, z.imag], dim=-1)


def rope_by_course_lib(x, offset=0, theta=10000.0):
    from course_lib.attention import apply_rope, rope_cos_sin

    positions = torch.arange(offset, offset + x.shape[-2])
    return apply_rope(x, *rope_cos_sin(positions, x.shape[-1], theta))


def rope_by_transformers(x, offset=0, theta=10000.0):
    nh, T, hs = x.shape[1], x.shape[2], x.shape[3]
    config = LlamaConfig(hidden_size=nh * hs, num_attention_heads=nh, rope_theta=theta)
    cos, sin = modeling_llama.LlamaRotaryEmbedding(config=config)(x, torch.arange(offset, offset + T)[None])
    return modeling_llama.apply_rotary_pos_emb(x, x, cos, sin)[0]


def rope_adjacent_pairs(x, offset=0, theta=10000.0):  # GPT-J / Meta's original layout: (0, 1), (2, 3), ...
    T, hs = x.shape[-2], x.shape[-1]
    angle = torch.arange(offset, offset + T).float()[:, None] * _freqs(hs, theta)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack([x1 * angle.cos() - x2 * angle.sin(), x2 * angle.cos() + x1 * angle.sin()], dim=-1)
    return out.flatten(-2)


def rope_from_zero(x, offset=0, theta=10000.0):  # ignores the offset: breaks with a cache
    return rope_complex(x, 0, theta)


def rope_positions_tensor(x, positions, theta=10000.0):  # takes a tensor of positions, not the offset
    hs = x.shape[-1]
    angle = positions.float()[:, None] * _freqs(hs, theta)
    a, b = x[..., : hs // 2], x[..., hs // 2:]
    return torch.cat([a * angle.cos() - b * angle.sin(), b * angle.cos() + a * angle.sin()], dim=-1)


def interleaved_complex(x, offset, theta):  # Meta's own code: neighbours as complex numbers
    T, hs = x.shape[-2], x.shape[-1]
    turn = torch.polar(torch.ones(T, hs // 2), torch.arange(offset, offset + T).float()[:, None] * _freqs(hs, theta))
    z = torch.view_as_complex(x.float().reshape(*x.shape[:-1], hs // 2, 2).contiguous())
    return torch.view_as_real(z * turn).flatten(-2)


def interleaved_as_halves(x, offset, theta):  # turned right, written back as halves
    T, hs = x.shape[-2], x.shape[-1]
    angle = torch.arange(offset, offset + T).float()[:, None] * _freqs(hs, theta)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.cat([a * angle.cos() - b * angle.sin(), b * angle.cos() + a * angle.sin()], dim=-1)


def permutation_by_index(w, n_head):
    hs = w.shape[0] // n_head
    within = torch.cat([torch.arange(0, hs, 2), torch.arange(1, hs, 2)])  # evens, then odds
    return w[torch.cat([h * hs + within for h in range(n_head)])]


def permutation_as_transformers(w, n_head):  # convert_llama_weights_to_hf's permute
    dim1, dim2 = w.shape
    return w.view(n_head, dim1 // n_head // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2)


def permutation_whole_matrix(w, n_head):
    return permutation_by_index(w, 1)


def permutation_reversed(w, n_head):  # halves -> neighbours
    hs = w.shape[0] // n_head
    back = torch.stack([torch.arange(hs // 2), torch.arange(hs // 2, hs)], dim=1).flatten()
    return w[torch.cat([h * hs + back for h in range(n_head)])]


def grouped_by_repeat(q, k, v):  # copies the keys after all: right values
    n_rep, T, S = q.shape[1] // k.shape[1], q.shape[2], k.shape[2]
    k, v = k.repeat_interleave(n_rep, dim=1), v.repeat_interleave(n_rep, dim=1)
    mask = torch.ones(T, S, dtype=torch.bool).tril(S - T)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def grouped_by_einsum(q, k, v):
    B, nh, T, hs = q.shape
    nkv, S = k.shape[1], k.shape[2]
    g = q.view(B, nkv, nh // nkv, T, hs)
    s = torch.einsum("bkgth,bksh->bkgts", g, k) / math.sqrt(hs)
    s = s.masked_fill(torch.ones(T, S, dtype=torch.bool).triu(S - T + 1), NEG_INF)
    return torch.einsum("bkgts,bksh->bkgth", s.softmax(-1), v).reshape(B, nh, T, hs)


def grouped_unshifted_mask(q, k, v):
    n_rep, T, S = q.shape[1] // k.shape[1], q.shape[2], k.shape[2]
    k, v = k.repeat_interleave(n_rep, dim=1), v.repeat_interleave(n_rep, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(T, S, dtype=torch.bool).tril())


def grouped_round_robin(q, k, v):
    n_rep, T, S = q.shape[1] // k.shape[1], q.shape[2], k.shape[2]
    k, v = k.repeat(1, n_rep, 1, 1), v.repeat(1, n_rep, 1, 1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(T, S, dtype=torch.bool).tril(S - T))


def repeat_by_index(k, n_rep):
    return k[:, torch.arange(k.shape[1] * n_rep) // n_rep]


def repeat_by_transformers(k, n_rep):
    return modeling_llama.repeat_kv(k, n_rep)


def repeat_tiled(k, n_rep):  # heads 0, 1, 0, 1 instead of 0, 0, 1, 1
    return k.repeat(1, n_rep, 1, 1)


def repeat_positions(k, n_rep):
    return k.repeat_interleave(n_rep, dim=2)


def cache_bytes_from_config(config, seq_len, bytes_per_value):
    return 2 * config.n_layer * config.kv_heads * config.head_size * seq_len * bytes_per_value


def cache_bytes_query_heads(config, seq_len, bytes_per_value):
    return 2 * config.n_layer * config.n_embd * seq_len * bytes_per_value


def cache_bytes_keys_only(config, seq_len, bytes_per_value):
    return config.n_layer * config.kv_heads * config.head_size * seq_len * bytes_per_value


def cache_update_by_list(past, k, v, window=None):  # a list, empty slices for no past, narrow
    past_k, past_v = past if past is not None else (k[:, :, :0], v[:, :, :0])
    k, v = torch.cat((past_k, k), 2), torch.cat((past_v, v), 2)
    if window is not None and k.size(2) > window:
        k, v = k.narrow(2, k.size(2) - window, window), v.narrow(2, v.size(2) - window, window)
    return [k, v]


def cache_new_first(past, k, v, window=None):
    if past is not None:
        k, v = torch.cat([k, past[0]], dim=2), torch.cat([v, past[1]], dim=2)
    return (k, v) if window is None else (k[:, :, -window:], v[:, :, -window:])


def cache_heads_axis(past, k, v, window=None):
    if past is not None:
        k, v = torch.cat([past[0], k], dim=1), torch.cat([past[1], v], dim=1)
    return (k, v) if window is None else (k[:, :, -window:], v[:, :, -window:])


def cache_window_oldest(past, k, v, window=None):
    if past is not None:
        k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
    return (k, v) if window is None else (k[:, :, :window], v[:, :, :window])


def accept_by_ratio_min(p, q, draft, u):
    """Right, written differently: the ratio capped at one, the residual via torch.where, n as a tensor."""
    for i, x in enumerate(draft.tolist()):
        if not u[i] < torch.clamp(p[i, x] / q[i, x], max=1.0):
            left = torch.where(p[i] > q[i], p[i] - q[i], torch.zeros_like(p[i]))
            return torch.tensor(i), left / left.sum()
    return len(draft), p[-1]


def accept_keep_going(p, q, draft, u):
    """Counts every kept token, even after a rejection."""
    kept = sum(int(u[i] < p[i, x] / q[i, x]) for i, x in enumerate(draft.tolist()))
    if kept == len(draft):
        return kept, p[-1]
    left = (p[kept] - q[kept]).clamp_min(0)
    return kept, left / left.sum()


def accept_unnormalised(p, q, draft, u):
    for i, x in enumerate(draft.tolist()):
        if u[i] >= p[i, x] / q[i, x]:
            return i, (p[i] - q[i]).clamp_min(0)
    return len(draft), p[-1]


def accept_returns_count(p, q, draft, u):
    """Returns only the count."""
    return sum(1 for i, x in enumerate(draft.tolist()) if u[i] < p[i, x] / q[i, x])


def sample_probs_first(scores, temperature=1.0, top_k=None, top_p=None):
    """Right, written differently: top-k by sorting, top-p by descending mass before each token."""
    scores = scores / temperature
    if top_k is not None:
        kth = scores.sort(dim=-1, descending=True).values[:, min(top_k, scores.size(-1)) - 1:][:, :1]
        scores = torch.where(scores >= kth, scores, torch.full_like(scores, -math.inf))
    if top_p is not None:
        s, order = scores.sort(dim=-1)
        remove = s.softmax(-1).cumsum(-1) <= 1 - top_p
        remove[:, -1] = False
        scores = scores.masked_fill(torch.zeros_like(remove).scatter(1, order, remove), -math.inf)
    return torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1)[:, 0]


def sample_greedy(scores, temperature=1.0, top_k=None, top_p=None):
    return (scores / temperature).argmax(-1)


def sample_temperature_times(scores, temperature=1.0, top_k=None, top_p=None):
    return torch.multinomial((scores * temperature).softmax(-1), 1).squeeze(1)


class KVAttentionSdpa(torch.nn.Module):
    """Right, written differently: the fused attention with a boolean mask, heads by reshape + permute."""

    def __init__(self, n_embd, n_head):
        super().__init__()
        self.n_head, self.n_embd = n_head, n_embd
        self.c_attn = torch.nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = torch.nn.Linear(n_embd, n_embd)

    def forward(self, x, past=None):
        B, T, C = x.shape
        q, k, v = (t.reshape(B, T, self.n_head, -1).permute(0, 2, 1, 3) for t in self.c_attn(x).chunk(3, dim=-1))
        if past is not None:
            k, v = torch.cat((past[0], k), 2), torch.cat((past[1], v), 2)
        S = k.shape[2]
        allowed = torch.arange(S)[None, :] <= torch.arange(S - T, S)[:, None]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.c_proj(y.permute(0, 2, 1, 3).reshape(B, T, C)), (k, v)


class KVAttentionNoOffset(KVAttentionSdpa):
    def forward(self, x, past=None):
        B, T, C = x.shape
        q, k, v = (t.reshape(B, T, self.n_head, -1).permute(0, 2, 1, 3) for t in self.c_attn(x).chunk(3, dim=-1))
        if past is not None:
            k, v = torch.cat((past[0], k), 2), torch.cat((past[1], v), 2)
        S = k.shape[2]
        allowed = torch.arange(S)[None, :] <= torch.arange(T)[:, None]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.c_proj(y.permute(0, 2, 1, 3).reshape(B, T, C)), (k, v)


# (check, right-but-different answers, [(wrong answer, words its message must contain)])
TABLE = [
    ("check_mean_of_squares", [lambda xs: float(np.mean(np.square(xs)))],
     [(lambda xs: (sum(xs) / len(xs)) ** 2, "got 12.25, expected 12.5")]),
    ("check_count_pairs", [counter_pairs],
     [(non_overlapping_pairs, "at key (1, 1): got 1, expected 2"),
      (lambda ids: {list(p)[0]: 1 for p in zip(ids, ids[1:])}, "keys must be pairs")]),
    ("check_apply_merge", [recursive_merge],
     [(step_one_merge, "got [256, 256, 1], expected [256, 1]")]),
    ("check_tokenizer_encode", [TokenizerInTableOrder, TokenizerByRank],
     [(TokenizerMostFrequentFirst, "Recognised mistake: merging the most frequent pair first"),
      (TokenizerReversedTable, "got [258, 66, 256], that is [b'ab', b'c', b'bc']"),
      (TokenizerOnePass, "that is [b'ab', b'c', b'bc']; expected [257, 256], that is [b'abc', b'bc']"),
      (Tokenizer.train("ab ab", 258), "give the class itself")]),
    ("check_longest_match", [longest_match_by_lengths],
     [(longest_match_shortest_rest, "fixed case 1 of 5: a piece whose longest first token leaves a rest")]),
    ("check_split_in_threes", [threes_after_split],
     [(threes_without_space, "without the optional space before it"),
      (threes_ascii_digits, "superscripts and fractions are lost"),
      (threes_from_the_right, "got ['12', '345'], expected ['123', '45']")]),
    ("check_decode_stream", [stream_by_codecs],
     [(stream_each_token, "got ['�', '�'], expected ['', '日']"),
      (stream_until_it_decodes, "a finished character waits too")]),
    ("check_token_dataset", [DatasetByUnfold, DatasetWithList],
     [(DatasetOfSeqLen, "your dataset has 2 windows, expected 1"),
      (DatasetFloat, "window 0: your x is float32, expected int64")]),
    ("check_embedding_grad", [grad_by_loop],
     [(lambda ids, g, V: g.sum((0, 1)).expand(V, -1), "values differ")]),
    ("check_document_positions", [positions_by_loop],
     [(lambda ids, eot: torch.arange(len(ids)), "2 of 5 values differ; at [3]: got 3, expected 0")]),
    ("check_split_documents", [documents_by_index],
     [(documents_grouped, "expected [[1], [], [2]]"), (documents_complete_only, "expected [[3], [7, 8]]")]),
    ("check_leak_groups", [groups_by_merging_sets],
     [(lambda parents: list(range(len(parents))),
       "lines 0 and 1 must be in the same group (they share an original, perhaps through other lines)")]),
    ("check_ngram_overlap", [overlap_with_counter],
     [(lambda tr, va, n: [1.0] * len(va), "got [1.0], expected [0.6666666666666666]")]),
    ("check_running_mean", [running_mean_by_matrix],
     [(running_mean_over_T, "got 0.666667, expected 2.0"), (running_mean_channels, "got 4.0, expected 3.0")]),
    ("check_multihead_attention", [mha_einsum],
     [(mha_scale_by_C, "scaled by the input width instead of the head size"), (mha_heads_last, "interleaved")]),
    ("check_causal_attention", [sdpa_attention, attention_by_loop],
     [(sqrt_t_attention, "Recognised mistake: scores scaled by the square root of T instead of the head size"),
      (zero_filled_attention, "hidden scores set to zero instead of minus infinity"),
      (no_dropout_attention, "fixed case 4 of 5: four heads, six positions, dropout 0.5 in training mode")]),
    ("check_causal_self_attention", [AttentionByUnflatten, AttentionByEinsum],
     [(AttentionPlainView, "Recognised mistake: heads split by a plain reshape"),
      (AttentionDropoutAlways, "fixed case 5 of 6: dropout 0.5, in eval mode"),
      (AttentionOtherNames, "parameters are not named like the reference's: it has in addition qkv.weight"),
      (AttentionByUnflatten(8, 2), "give the class itself")]),
    ("check_sliding_window_mask", [window_by_loops],
     [(window_too_wide, "Recognised mistake: one key too many"),
      (lambda T, w: window_by_loops(T, w).float(), "your mask is float32; the mask must be bool")]),
    ("check_layer_norm", [ln_via_var, lambda x, w, b, eps: F.layer_norm(x, x.shape[-1:], w, b, eps)],
     [(ln_eps_outside, "eps added to the standard deviation"), (ln_unbiased, "the unbiased variance")]),
    ("check_gelu", [gelu_sigmoid_form, lambda x: F.gelu(x, approximate="tanh")],
     [(lambda x: F.gelu(x), "the exact GELU (with the error function)"),
      (lambda x: x.mul_(torch.sigmoid(1.702 * x)), "changed its input x in place")]),
    ("check_mlp", [MLPFunctional],
     [(MLPDropoutOnHidden, "Recognised mistake: dropout applied to the wide hidden layer"),
      (MLPNoDropout, "fixed case 4 of 4: dropout 0.5, in training mode")]),
    ("check_block", [BlockTorchParts],
     [(BlockPostLN, "Recognised mistake: a post-LN block"), (BlockAddsTheTuple, "raised TypeError")]),
    ("check_parallel_block", [parallel_with_names],
     [(parallel_sequential, "Recognised mistake: the MLP reads the stream after attention's update"),
      (lambda block, x: x + block.attn(block.ln_1(x)) + block.mlp(block.ln_1(x)), "raised TypeError")]),
    ("check_fold_layer_norm", [fold_by_diag],
     [(fold_rows, "Recognised mistake: each output row scaled instead of each input column"),
      (fold_in_place, "changed its input fc_weight, fc_bias in place")]),
    ("check_conv1d_mlp", [conv1d_mlp_linear],
     [(conv1d_mlp_transposed, "Recognised mistake: the weights read as nn.Linear's"),
      (conv1d_mlp_erf, "got 0.463119, expected 0.462916")]),
    ("check_gpt", [GPTOwnLoss],
     [(GPTNoFinalNorm, "Recognised mistake: the final LayerNorm ln_f not applied"),
      (GPTLogitsOnly, "your output is a Tensor; it must be a tuple")]),
    ("check_hf_weights", [convert_by_comprehension],
     [(convert_in_place, "changed its input hf_state_dict in place"),
      (convert_every_matrix, "Recognised mistake: every 2-D weight transposed, the embeddings too"),
      (convert_loose_suffix, "Recognised mistake: the biases of c_attn left out")]),
    ("check_generation_loop", [generate_by_wpe_size],
     [(generate_no_window, "raised IndexError"),
      (generate_first_position, "Recognised mistake: the scores of the first position")]),
    ("check_sequence_loss", [seq_loss_by_mask],
     [(seq_loss_by_positions, "Recognised mistake: each row divided by its number of positions"),
      (seq_loss_pooled, "Recognised mistake: one mean over the whole batch"),
      (lambda lo, la: seq_loss_by_mask(lo, la).tolist(), "return a tensor with one loss per sequence")]),
    ("check_bare_state_dict", [bare_by_rename],
     [(bare_without_head, "Recognised mistake: the head missing"),
      (convert_by_comprehension, "fixed case 1 of 3: one layer")]),
    ("check_variant_parameter_count", [count_by_meta_model],
     [(count_by_layers, "fixed case 1 of 4: GPT-2 small with an untied head"),
      (lambda cfg: float(count_by_meta_model(cfg)) * 1.0001, "whole number")]),
    ("check_lr_schedule", [lr_as_0d_tensor, lr_numpy],
     [(lr_zero_at_start, "a warm-up that starts from zero"),
      (lr_to_zero, "a cosine that falls to zero instead of to min_lr")]),
    ("check_decay_groups", [groups_by_ndim],
     [(groups_of_parameters, "return their names"),
      (groups_by_name, "decayed, but must not be (biases and LayerNorm parameters are 1-D): 1.weight"),
      (groups_from_state_dict,
       "not trainable parameters of this model (a tied weight is named once): lm_head.weight")]),
    ("check_train_step", [step_by_hand],
     [(_step_like(zero=False), "Recognised mistake: the gradients never cleared"),
      (_step_like(clip_zero=True), "a limit of zero, which wipes the gradients out"),
      (lambda *args, **kwargs: 0.5, "return a pair of numbers")]),
    ("check_wsd_schedule", [wsd_by_min],
     [(wsd_cosine, "a cosine decay instead of a straight line")]),
    ("check_decay_counts", [decay_counts_by_model],
     [(decay_counts_untied, "the tied head counted a second time"),
      (decay_counts_no_wpe, "got 123,532,032, expected 124,318,464")]),
    ("check_accumulation_weights", [weights_as_tensor],
     [(lambda t: [1 / len(t)] * len(t), "every micro-batch weighted equally")]),
    ("check_clip_grads", [clip_by_cat],
     [(clip_each, "each tensor clipped on its own instead of one factor"),
      (clip_always, "small gradients scaled up to the limit")]),
    ("check_top_k_filter", [top_k_by_sort],
     [(top_k_scatter, "row 0: you kept 2 tokens [1, 3], expected 3 [1, 2, 3]"),
      (top_k_in_place, "changed its input scores in place")]),
    ("check_top_p_filter", [top_p_descending],
     [(top_p_drops_crossing, "row 0: you kept 1 token [1], expected 2 [1, 2]")]),
    ("check_repetition_penalty", [penalty_loop],
     [(penalty_in_place, "changed its input scores in place"),
      (penalty_divides_all, "a negative score must be multiplied"),
      (penalty_per_occurrence, "penalised once for every time it was seen")]),
    ("check_acceptance_rule", [accept_by_ratio_min],
     [(accept_unnormalised, "not divided by its sum"),
      (accept_keep_going, "you kept"),
      (accept_returns_count, "return a pair")]),
    ("check_sample_next", [sample_probs_first],
     [(sample_greedy, "the most likely token taken instead of a random draw"),
      (sample_temperature_times, "multiplied by the temperature")]),
    ("check_kv_cache_attention", [KVAttentionSdpa],
     [(KVAttentionNoOffset, "the causal mask not shifted by the cached positions")]),
    ("check_kv_cache_update", [cache_update_by_list],
     [(cache_new_first, "the new positions put before the past ones"),
      (cache_heads_axis, "the positions are the third axis"),
      (cache_window_oldest, "keeps the oldest positions instead of the newest")]),
    ("check_previous_token_score", [prev_by_loop],
     [(prev_over_all_queries, "counting query 0 that has none")]),
    ("check_induction_score", [induction_by_loop],
     [(induction_on_copy, "perfect induction attention"),
      (induction_fixed_length, "a sequence longer than two periods")]),
    ("check_attention_entropy", [entropy_entr],
     [(entropy_nan, "your entropy contains NaN"), (entropy_bits, "the entropy in bits")]),
    ("check_logit_lens", [lens_by_hand],
     [(lens_norm_twice, "applied again to the last hidden state"),
      (lens_in_training_mode, "fixed case 5 of 5: a model left in training mode")]),
    ("check_ablate_head", [ablate_by_mask],
     [(ablate_no_handle, "return the handle"), (ablate_after_c_proj, "where the heads are already mixed")]),
    ("check_direct_logit_attribution", [dla_by_weight_slices],
     [(dla_no_scale, "division by the spread"), (dla_unbiased_variance, "fixed case 1 of 5")]),
    ("check_patch_head", [patch_by_view],
     [(patch_left_on, "the patching hook left on the model")]),
    ("check_lora_linear", [LoRAByFLinear],
     [(LoRANotScaled, "the update not scaled at all"), (LoRADropoutOnBoth, "the frozen layer's input too")]),
    ("check_replace_linear_with_lora", [swap_recursive],
     [(swap_not_frozen, "left trainable"), (swap_substring, "only ends in the same letters")]),
    ("check_lora_param_count", [lora_count_loop],
     [(lora_count_product, "got 169,869,312, expected 294,912"), (lambda n, s, r: "294912", "whole number")]),
    ("check_masked_labels", [labels_by_comprehension],
     [(labels_pre_shifted, "fixed case 1"), (labels_pads_learned, "the padding labelled with the pad id")]),
    ("check_optimizer_state_numbers", [state_by_loop],
     [(state_adafactor_full, "counted in full")]),
    ("check_dora_weight", [dora_by_normalize],
     [(dora_by_columns, "each column")]),
    ("check_flops_per_token", [flops_expanded],
     [(flops_n_positions, "computed with n_positions instead of the sequence length")]),
    ("check_hours_to_train", [hours_from_tokens_per_second, hours_numpy],
     [(hours_one_gpu, "the GPUs not counted"), (hours_in_seconds, "in seconds instead of hours"),
      (hours_percent, "got 0.0239272, expected 2.39272")]),
    ("check_padded_vocab", [padded_by_ceil, padded_by_modulo],
     [(padded_nearest, "rounding to the nearest multiple instead of up"),
      (padded_always_grows, "added to a size that already is a multiple"),
      (padded_float, "got 50257.0, expected 50,304")]),
    ("check_shard", [shard_loop],
     [(shard_ragged, "the ragged tail kept"), (shard_positions, "got [0, 3, 6], expected [10, 13, 16]")]),
    ("check_rms_norm", [rms_by_rsqrt, rms_by_course_lib, rms_by_transformers,
                        lambda x, w, eps=1e-6: F.rms_norm(x, x.shape[-1:], w, eps)],
     [(rms_minus_mean, "the mean subtracted first (that is LayerNorm)"),
      (rms_eps_outside, "eps added after the square root instead of inside it"),
      (rms_whole_tensor, "one root mean square for the whole tensor"),
      (rms_no_default, "missing 1 required positional argument")]),
    ("check_apply_rope", [rope_complex, rope_by_course_lib, rope_by_transformers],
     [(rope_adjacent_pairs, "neighbouring channels turned as pairs"),
      (rope_from_zero, "the offset ignored"),
      (rope_positions_tensor, "raised AttributeError")]),
    ("check_repeat_kv", [repeat_by_index, repeat_by_transformers],
     [(repeat_tiled, "the heads tiled (0, 1, 0, 1)"), (repeat_positions, "along the positions")]),
    ("check_rope_interleaved", [interleaved_complex],
     [(rope_complex, "the halves layout of your piece above"),
      (interleaved_as_halves, "written back as halves")]),
    ("check_rope_permutation", [permutation_by_index, permutation_as_transformers],
     [(permutation_whole_matrix, "one reordering of all the rows together"),
      (permutation_reversed, "the reverse reordering")]),
    ("check_grouped_cached_attention", [grouped_by_repeat, grouped_by_einsum],
     [(grouped_unshifted_mask, "the causal mask not shifted by the cache"),
      (grouped_round_robin, "round-robin")]),
    ("check_kv_cache_bytes", [cache_bytes_from_config],
     [(cache_bytes_query_heads, "the cache sized by the query heads"),
      (cache_bytes_keys_only, "got 19,200, expected 38,400")]),
]


def test_every_exercise_has_learners_here() -> None:
    checked = {row[0] for row in TABLE}
    every = {n for n in dir(checks) if n.startswith("check_")}
    assert checked == every


def mha_softmax_over_queries(x, w_q, w_k, w_v):
    q, k, v = (x.unsqueeze(1) @ w for w in (w_q, w_k, w_v))
    T = x.size(1)
    s = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1),
                                                                     NEG_INF)
    return (s.softmax(-2) @ v).transpose(1, 2).flatten(2)


def rope_wrong_exponent(x, offset=0, theta=10000.0):  # theta^(-i/hs) instead of theta^(-2i/hs)
    T, hs = x.shape[-2], x.shape[-1]
    angle = torch.arange(offset, offset + T).float()[:, None] * theta ** (-torch.arange(0, hs // 2).float() / hs)
    x1, x2 = x[..., : hs // 2], x[..., hs // 2:]
    return torch.cat([x1 * angle.cos() - x2 * angle.sin(), x2 * angle.cos() + x1 * angle.sin()], dim=-1)


@pytest.mark.parametrize(("name", "wrong", "not_said"), [
    ("check_apply_rope", rope_wrong_exponent, "halves"),
    ("check_conv1d_mlp", conv1d_mlp_erf, "transpos"),
    ("check_multihead_attention", mha_softmax_over_queries, "scale"),
])
def test_a_fixed_case_is_shown_as_its_input_not_as_a_mistake_it_did_not_see(name, wrong, not_said, capsys) -> None:
    """Issue 27's learner simulation: each of these was told the diagnosis of another mistake."""
    result = getattr(checks, name)(wrong)
    out = capsys.readouterr().out
    assert result.status == "fail"
    first = out.splitlines()[0]
    assert first.startswith(f"✗ {result.name}: wrong on fixed case ") and ": " in first.split("fixed case ", 1)[1]
    assert not_said not in out.split("  Hint")[0].lower(), out


@pytest.mark.parametrize(("name", "rights", "wrongs"), TABLE, ids=[row[0] for row in TABLE])
def test_right_answers_pass_and_classic_mistakes_fail(name, rights, wrongs, capsys) -> None:
    check = getattr(checks, name)
    for right in rights:
        result = check(right)
        assert result.passed, capsys.readouterr().out
        assert result.fn is right
    capsys.readouterr()
    for wrong, words in wrongs:
        result = check(wrong)
        out = capsys.readouterr().out
        assert result.status == "fail" and result.fn is not wrong, out
        assert words in out, f"{name}: {words!r} not in\n{out}"


def test_the_infinite_apply_merge_fails_within_the_time_limit(monkeypatch, capsys) -> None:
    monkeypatch.setattr(_core, "TIME_LIMIT_S", 1.0)
    start = time.monotonic()
    result = checks.check_apply_merge(endless_merge)
    assert time.monotonic() - start < 4
    out = capsys.readouterr().out
    assert result.status == "fail" and "did not return within 1 s (an infinite loop?)" in out
    assert checks.last_failure("apply_merge").args == ([1, 1, 1], (1, 1), 256)


def test_the_in_place_penalty_would_have_changed_the_callers_logits(capsys) -> None:
    checks.check_repetition_penalty(penalty_in_place)
    failure = checks.last_failure("repetition_penalty")
    ids, scores, penalty = failure.args
    before = scores.clone()
    failure.reproduce(penalty_in_place)  # a copy: the stored input stays as it was
    assert torch.equal(failure.args[1], before)
    penalty_in_place(ids, scores, penalty)
    assert not torch.equal(scores, before)  # what the check caught
