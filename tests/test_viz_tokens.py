"""TokenizerPlayground's logic (chips, counts, HTML) and the widget's wiring."""

from __future__ import annotations

import pytest

from course_lib.errors import CourseInputError
from course_lib.tokenizer import ENDOFTEXT, CharTokenizer, gpt2_tokenizer
from course_lib.viz.tokens import TokenizerPlayground, chips_html, token_chips, token_stats


def test_bpe_chips_follow_the_tokenizer() -> None:
    gpt2 = gpt2_tokenizer()
    text = f"Hello world 😀{ENDOFTEXT}"
    chips = token_chips(text, gpt2)
    assert [c.id for c in chips] == gpt2.encode(text, allowed_special="all")
    assert chips[0].label == "Hello" and chips[1].label == "␣world"
    assert chips[-1].special and chips[-1].label == ENDOFTEXT
    emoji = [c for c in chips if "\\x" in c.label]  # 😀 is split inside its UTF-8 bytes
    assert emoji and b"".join(gpt2.vocab[c.id] for c in emoji) == " 😀".encode()
    assert emoji[0].label.startswith("␣")
    stats = token_stats(text, chips)
    assert stats["tokens"] == len(chips) and stats["bytes"] == len(text.encode())
    assert stats["bytes_per_token"] == pytest.approx(stats["bytes"] / stats["tokens"])


def test_char_chips_mark_unknown_characters() -> None:
    tok = CharTokenizer.train("abc \n")
    chips = token_chips("ab z\n", tok)
    assert [c.id for c in chips] == [tok.stoi["a"], tok.stoi["b"], tok.stoi[" "], None, tok.stoi["\n"]]
    assert chips[2].label == "␣" and chips[4].label == "↵"
    assert token_stats("ab z\n", chips)["unknown"] == 1


def test_html_escapes_and_shows_ids() -> None:
    tok = CharTokenizer.train("<b>&")
    out = chips_html(token_chips("<b>&", tok))
    assert "&lt;" in out and "&amp;" in out and "<b>" not in out.replace("<b>&", "")
    assert str(tok.stoi["<"]) in out
    assert str(tok.stoi["<"]) + "</span>" not in chips_html(token_chips("<", tok), show_ids=False)


def test_playground_redraws_every_column() -> None:
    chars = CharTokenizer.train("hello world")
    pg = TokenizerPlayground({"characters": chars, "GPT-2": gpt2_tokenizer()}, text="hello")
    assert "5</b> tokens" in pg.columns["characters"].value
    assert "1</b> tokens" in pg.columns["GPT-2"].value
    pg.textbox.value = "hello world"  # what typing in the box does
    assert "11</b> tokens" in pg.columns["characters"].value
    assert "2</b> tokens" in pg.columns["GPT-2"].value
    pg.show_ids.value = False
    assert "font-size:9px" not in pg.columns["GPT-2"].value
    assert pg._repr_mimebundle_()  # displays as its widget
    with pytest.raises(CourseInputError):
        TokenizerPlayground({})
