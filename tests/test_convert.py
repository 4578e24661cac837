"""course_lib.convert: one table per architecture, names both ways, damaged folders said in one line.

The parity with transformers (logits, gradients, caches) is tested in test_model.py and
test_model_llama.py; here the tables themselves and the folder reading.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from course_lib import convert
from course_lib.errors import CourseInputError
from course_lib.model import GPT, LLAMA_SWITCHES, GPTConfig

SMALL = dict(vocab_size=40, n_positions=16, n_embd=24, n_layer=2, n_head=3)
SHAPES = {
    "gpt2": GPTConfig(**SMALL),
    "gpt2-untied": GPTConfig(**SMALL, tie_word_embeddings=False),
    "llama-gqa-bias": GPTConfig(**{**SMALL, "n_head": 4, "n_embd": 32}, **{**LLAMA_SWITCHES, "bias": True},
                                n_kv_head=2),
}


def test_every_architecture_is_one_table_entry_keyed_by_its_model_type() -> None:
    assert set(convert.ARCHITECTURES) == {"gpt2", "llama"}
    for model_type, arch in convert.ARCHITECTURES.items():
        assert arch.model_type == model_type
    assert convert.architecture_of(SHAPES["gpt2"]) is convert.GPT2
    assert convert.architecture_of(SHAPES["llama-gqa-bias"]) is convert.LLAMA
    assert convert.architecture_of(GPTConfig(**SMALL, norm="rmsnorm")) is None  # a course-only mix


@pytest.mark.parametrize("name", list(SHAPES))
def test_names_go_there_and_back(name: str) -> None:
    torch.manual_seed(0)
    model = GPT(SHAPES[name])
    theirs = model.hf_state_dict()
    arch = convert.architecture_of(model.config)
    assert all(k.startswith((arch.base_prefix, "lm_head.")) for k in theirs), sorted(theirs)[:4]
    back = convert.from_hf_names(arch, theirs)
    tied = model.config.tie_word_embeddings
    ours = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight" or not tied}
    assert set(back) == set(ours)
    for k, v in ours.items():
        assert torch.equal(back[k], v), k


def test_config_fields_refuse_an_unknown_model_type_and_an_incomplete_config() -> None:
    with pytest.raises(CourseInputError, match=r"model_type 'mistral' is not one the course converts; it reads gpt2, "):
        convert.config_fields_from_hf({"model_type": "mistral"})
    with pytest.raises(CourseInputError, match=r"the gpt2 config has no 'vocab_size'"):
        convert.config_fields_from_hf({"model_type": "gpt2"})


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    torch.manual_seed(1)
    return GPT(SHAPES["gpt2"]).save_pretrained(tmp_path / "model")


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text, text
    return text


@pytest.mark.parametrize(
    "content, pattern",
    [
        ('{"model_type": "gpt2", "n_embd": 24,', r"config\.json is not valid JSON .* the folder is damaged"),
        ("\x00\x01 garbage", r"config\.json is not valid JSON"),
        (b"\xff\xfe\x00", r"config\.json is not valid JSON"),
        ("[1, 2, 3]", r"config\.json holds a JSON list, not a model config"),
        ('{"model_type": "gpt2"}', r"the gpt2 config has no 'vocab_size'"),
    ],
)
def test_a_damaged_config_json_is_one_clear_line(saved: Path, content: str | bytes, pattern: str) -> None:
    target = saved / "config.json"
    target.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises(CourseInputError, match=pattern) as err:
        GPT.from_pretrained(saved)
    _one_line(err)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_safetensors_file_is_one_clear_line(saved: Path, damage: str) -> None:
    weights = saved / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"not a safetensors file" * 10,
                         "empty": b""}[damage])
    with pytest.raises(CourseInputError, match=r"model\.safetensors could not be read .* damaged or truncated") as err:
        GPT.from_pretrained(saved)
    _one_line(err)


def test_a_truncated_pytorch_model_bin_is_one_clear_line(saved: Path) -> None:
    weights = saved / "model.safetensors"
    torch.save(GPT(SHAPES["gpt2"]).hf_state_dict(), saved / "pytorch_model.bin")
    weights.unlink()
    assert GPT.from_pretrained(saved).config == SHAPES["gpt2"]  # the .bin is read when whole
    data = (saved / "pytorch_model.bin").read_bytes()
    (saved / "pytorch_model.bin").write_bytes(data[: len(data) // 3])
    with pytest.raises(CourseInputError, match=r"pytorch_model\.bin could not be read") as err:
        GPT.from_pretrained(saved)
    _one_line(err)


def test_a_folder_saved_from_the_base_model_gets_its_prefix(saved: Path) -> None:
    from safetensors.torch import load_file, save_file

    sd = load_file(saved / "model.safetensors")
    save_file({k.removeprefix("transformer."): v for k, v in sd.items()}, saved / "model.safetensors")
    fields, weights = convert.read_pretrained(saved)
    assert GPTConfig(**fields) == SHAPES["gpt2"] and all(k.startswith("transformer.") for k in weights)
