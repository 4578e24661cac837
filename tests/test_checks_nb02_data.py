"""The notebook 02 checks: the TokenDataset piece and the exercises pass with the reference, fail with a
wrong answer, fall back to the reference with an unfinished stub."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import checks
from course_lib.checks import nb02_data as C
from course_lib.data import TokenDataset as LibDataset


def stub(*args, **kwargs):
    raise NotImplementedError


class StubDataset(C.TokenDataset):
    def __len__(self):
        raise NotImplementedError

    def __getitem__(self, i):
        raise NotImplementedError


class DatasetByRange(C.TokenDataset):  # right, written another way
    def __len__(self):
        return len(range(0, len(self.ids) - self.seq_len, self.stride))

    def __getitem__(self, i):
        s = range(0, len(self.ids) - self.seq_len, self.stride)[i]
        return self.ids[s : s + self.seq_len], self.ids[s + 1 : s + self.seq_len + 1]


class DatasetIgnoringStride(C.TokenDataset):
    def __len__(self):
        return max(0, (len(self.ids) - 1) // self.seq_len)

    def __getitem__(self, i):
        chunk = self.ids[i * self.seq_len : (i + 1) * self.seq_len + 1]
        return chunk[:-1], chunk[1:]


def wrong_split_documents(ids, eot_id):
    docs, current = [], []
    for i in ids:
        current.append(i)  # keeps the end-of-text token inside the document
        if i == eot_id:
            docs.append(current)
            current = []
    return docs + ([current] if current else [])


def learner_split_documents(ids, eot_id):  # like str.split, without a last empty piece
    docs = [[]]
    for i in ids:
        if i == eot_id:
            docs.append([])
        else:
            docs[-1].append(i)
    return docs[:-1] if not docs[-1] else docs


def learner_embedding_grad(ids, grad_out, vocab_size):  # the one-hot view, literally
    one_hot = torch.nn.functional.one_hot(ids, vocab_size).to(grad_out.dtype)  # (B, T, V)
    return torch.einsum("btv,btc->vc", one_hot, grad_out)


def wrong_embedding_grad(ids, grad_out, vocab_size):
    grad = torch.zeros(vocab_size, grad_out.size(-1))
    grad[ids.reshape(-1)] = grad_out.reshape(-1, grad_out.size(-1))  # repeated tokens overwrite
    return grad


def learner_document_positions(ids, eot_id):  # without a loop over tokens
    n = len(ids)
    after_eot = torch.cat([torch.tensor([True]), ids[:-1] == eot_id])       # a document starts here
    starts = torch.where(after_eot, torch.arange(n), torch.zeros(n, dtype=torch.long))
    return torch.arange(n) - starts.cummax(0).values


def wrong_document_positions(ids, eot_id):  # forgets to start again
    return torch.arange(len(ids))


CASES = [
    (checks.check_token_dataset, C.TokenDataset, DatasetByRange, DatasetIgnoringStride, StubDataset),
    (checks.check_split_documents, C.reference_split_documents, learner_split_documents, wrong_split_documents,
     stub),
    (checks.check_embedding_grad, C.reference_embedding_grad, learner_embedding_grad, wrong_embedding_grad, stub),
    (checks.check_document_positions, C.reference_document_positions, learner_document_positions,
     wrong_document_positions, stub),
]


@pytest.mark.parametrize(("check", "reference", "learner", "wrong", "unfinished"), CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_check_passes_fails_and_falls_back(check, reference, learner, wrong, unfinished, capsys) -> None:
    for right in (reference, learner):
        ok = check(right)
        assert ok.status == "pass" and ok.fn is right, capsys.readouterr().out
        assert "✓" in capsys.readouterr().out

    bad = check(wrong)
    assert bad.status == "fail" and bad.fn is reference
    out = capsys.readouterr().out
    assert "✗" in out and "Hint" in out

    todo = check(unfinished)
    assert todo.status == "todo" and todo.fn is reference
    assert "not done yet" in capsys.readouterr().out


def test_all_checks_are_exported() -> None:
    assert set(C.__all__) == {"check_token_dataset", "check_split_documents", "check_embedding_grad",
                              "check_document_positions"}
    for name in C.__all__:
        assert getattr(checks, name) is getattr(C, name)


def test_the_reference_dataset_is_course_libs() -> None:
    ids = torch.randint(0, 50, (97,))
    for seq_len, stride in [(8, None), (8, 3), (5, 11), (96, 1), (3, 3)]:
        mine, lib = C.TokenDataset(ids, seq_len, stride), LibDataset(ids, seq_len, stride=stride)
        assert len(mine) == len(lib)
        for i in range(len(lib)):
            for a, b in zip(mine[i], lib[i]):
                assert torch.equal(a, b) and a.dtype == b.dtype == torch.int64
    assert len(C.TokenDataset(np.arange(8, dtype=np.uint16), 8)) == 0


def test_the_dataset_messages_name_the_window(capsys) -> None:
    checks.check_token_dataset(C._WindowsOfSeqLen)
    out = capsys.readouterr().out
    assert "fixed case 1 of 7: exactly seq_len plus one ids" in out
    assert "your dataset has 2 windows, expected 1" in out and "Recognised mistake: windows of seq_len ids" in out
    checks.check_token_dataset(C._StartAtIndex)
    out = capsys.readouterr().out
    assert "window 1: your x is [31, 32, 33], expected [37, 38, 39]" in out

    class NotAPair(C.TokenDataset):
        def __getitem__(self, i):
            return self.ids[i * self.stride : i * self.stride + self.seq_len + 1]

    assert checks.check_token_dataset(NotAPair).status == "fail"
    assert "return a pair (x, y) of tensors" in capsys.readouterr().out


def test_the_embedding_gradient_is_autograds() -> None:
    emb = torch.nn.Embedding(7, 3)
    ids = torch.tensor([[1, 1, 4], [6, 1, 0]])
    out = emb(ids)
    upstream = torch.randn_like(out)
    out.backward(upstream)
    assert torch.allclose(C.reference_embedding_grad(ids, upstream, 7), emb.weight.grad)


def test_document_positions_restart_after_each_end_of_text() -> None:
    assert C.reference_document_positions(torch.tensor([4, 5, 9, 6, 9]), 9).tolist() == [0, 1, 2, 0, 1]
    assert C.reference_document_positions(torch.tensor([9, 9, 1]), 9).tolist() == [0, 0, 0]
