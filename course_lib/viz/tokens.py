"""TokenizerPlayground: type text, see it as coloured token chips under several tokenizers.

The logic is plain functions that tests call directly: `token_chips` (what the chips
are), `token_stats` (counts), `chips_html` (the HTML). The widget only wires a text box
to them and draws the HTML. Works offline: plain ipywidgets and inline styles.

Introduced in notebooks/01_tokenization.ipynb.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TokenChip", "TokenizerPlayground", "chips_html", "token_chips", "token_stats"]

# pastel backgrounds, readable with dark text in light and dark themes
PALETTE = ("#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6", "#a0c4ff", "#ffadad")
_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


@dataclass(frozen=True)
class TokenChip:
    """One token of a text: its id (None if the tokenizer does not know it) and how to show it."""

    id: int | None
    label: str  # what the chip shows: whitespace made visible, raw bytes as \\xNN
    detail: str  # tooltip: id and bytes
    special: bool = False


def _show(s: str) -> str:
    return "".join(_VISIBLE.get(c, c) for c in s) or "∅"


def _bpe_chip(tok: Any, i: int) -> TokenChip:
    specials = {v: k for k, v in getattr(tok, "special_tokens", {}).items()}
    if i in specials:
        return TokenChip(i, specials[i], f"id {i} · special token", special=True)
    b: bytes = tok.vocab[i]
    try:
        label = _show(b.decode("utf-8"))
    except UnicodeDecodeError:  # part of a multi-byte character: show the bytes
        label = _show(b.decode("utf-8", "backslashreplace"))
    return TokenChip(i, label, f"id {i} · {len(b)} byte{'s' if len(b) != 1 else ''} {b!r}")


def token_chips(text: str, tokenizer: Any) -> list[TokenChip]:
    """The chips for `text` under `tokenizer` (a `BPETokenizer` or a `CharTokenizer`).

    Special-token names in the text become one special chip; a character a
    `CharTokenizer` never saw becomes a chip with ``id=None`` instead of an error.
    """
    if hasattr(tokenizer, "stoi"):  # CharTokenizer
        chips = []
        for c in text:
            i = tokenizer.stoi.get(c)
            detail = f"id {i}" if i is not None else "not in the vocabulary"
            chips.append(TokenChip(i, _show(c), f"{detail} · {c!r}"))
        return chips
    ids = tokenizer.encode(text, allowed_special="all")
    return [_bpe_chip(tokenizer, i) for i in ids]


def token_stats(text: str, chips: list[TokenChip]) -> dict[str, float]:
    """Counts for a text and its chips: characters, UTF-8 bytes, tokens, bytes per token."""
    n_bytes = len(text.encode("utf-8", "surrogatepass"))
    return {
        "characters": len(text),
        "bytes": n_bytes,
        "tokens": len(chips),
        "bytes_per_token": n_bytes / len(chips) if chips else 0.0,
        "unknown": sum(c.id is None for c in chips),
    }


def chips_html(chips: list[TokenChip], show_ids: bool = True) -> str:
    """Inline-styled HTML for `chips`: one coloured box per token, its id underneath."""
    parts = []
    for k, c in enumerate(chips):
        bg = "#eeeeee" if c.special else ("#ff8080" if c.id is None else PALETTE[k % len(PALETTE)])
        border = "2px solid #444" if c.special else "1px solid #0002"
        idline = (f'<span style="display:block;font-size:9px;color:#555">{"?" if c.id is None else c.id}</span>'
                  if show_ids else "")
        parts.append(
            f'<span title="{html.escape(c.detail)}" style="display:inline-block;margin:1px;padding:1px 3px;'
            f'border-radius:4px;border:{border};background:{bg};color:#111;font-family:monospace;'
            f'white-space:pre;text-align:center;line-height:1.2">{html.escape(c.label)}{idline}</span>'
        )
    return '<div style="line-height:1.9">' + "".join(parts) + "</div>"


def _column_html(name: str, text: str, tokenizer: Any, show_ids: bool) -> str:
    chips = token_chips(text, tokenizer)
    s = token_stats(text, chips)
    unknown = f", <b>{s['unknown']}</b> unknown" if s["unknown"] else ""
    head = (f"<div style='font-family:sans-serif;font-size:13px;margin-bottom:4px'><b>{html.escape(name)}</b> "
            f"(vocab {len(tokenizer):,}): <b>{s['tokens']}</b> tokens for {s['characters']} characters, "
            f"{s['bytes']} bytes, {s['bytes_per_token']:.2f} bytes/token{unknown}</div>")
    return head + chips_html(chips, show_ids)


class TokenizerPlayground:
    """Type text; see it under each tokenizer side by side (chips with ids, counts).

    ``TokenizerPlayground({"characters": char_tok, "trained 8k": tok, "GPT-2": gpt2})``,
    then display it as the last expression of a cell.
    """

    def __init__(self, tokenizers: Mapping[str, Any], text: str = "Hello world! Tokenization isn't hard 🙂",
                 show_ids: bool = True) -> None:
        import ipywidgets as w

        if not tokenizers:
            from ..errors import CourseInputError

            raise CourseInputError("TokenizerPlayground needs at least one tokenizer, e.g. {'GPT-2': gpt2_tokenizer()}")
        self.tokenizers = dict(tokenizers)
        self.textbox = w.Textarea(value=text, placeholder="Type here…", continuous_update=True,
                                  layout=w.Layout(width="100%", height="70px"))
        self.show_ids = w.Checkbox(value=show_ids, description="show ids", indent=False)
        self.columns = {name: w.HTML() for name in self.tokenizers}
        for box in self.columns.values():
            box.layout = w.Layout(flex="1 1 0", min_width="220px", margin="0 6px")
        self.widget = w.VBox([
            self.textbox, self.show_ids,
            w.HBox(list(self.columns.values()), layout=w.Layout(flex_flow="row wrap", align_items="flex-start")),
        ])
        self.textbox.observe(lambda _: self.refresh(), names="value")
        self.show_ids.observe(lambda _: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        """Redraw every column for the current text."""
        for name, tok in self.tokenizers.items():
            self.columns[name].value = _column_html(name, self.textbox.value, tok, self.show_ids.value)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
