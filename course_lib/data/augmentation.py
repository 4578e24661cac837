"""Augmentation: `expand_lines`, the original project's expand_train.py done carefully.

Five operations (recombine, drop, swap, replace a noun, recombine-and-replace) over
clause boundaries, with the word lists they need; nothing of validation leaks in.

Reference: Wei & Zou, "EDA: Easy Data Augmentation Techniques" (2019): word deletion
and swaps, the spirit of these operations.

Introduced in notebooks/02_data_and_embeddings.ipynb.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import CourseInputError

_CONJUNCTIONS = frozenset(
    "and but or so yet because while when although though since until after before "
    "which who where if unless".split()
)
_CLAUSE_PUNCT = ",;:"
_STRIP = string.punctuation + "“”‘’«»—–"


@dataclass
class ExpandReport:
    """What `expand_lines` did. ``originals + new + repeats == target`` always holds.

    - originals: input lines copied through unchanged (all of them).
    - new: made lines that differ from every input line and every earlier output line.
    - repeats: made lines that are exact copies of a line already there (only when no
      new line could be found in `max_tries` attempts, e.g. for one-word inputs).
    - operations: how many new lines each operation made.
    - exhausted_at: None, or the number of lines there were when every operation had
      been retired (no operation could make a new line any more); every line after it
      is an exact repeat.
    - parents: for each output line, the indices of the input lines it came from.
    """

    target: int
    originals: int
    new: int
    repeats: int
    operations: dict[str, int] = field(default_factory=dict)
    input_duplicates: int = 0
    forbidden_hits: int = 0
    seed: int = 0
    exhausted_at: int | None = None
    parents: list[tuple[int, ...]] = field(default_factory=list, repr=False)

    def summary(self) -> str:
        """One line with the counts."""
        ops = ", ".join(f"{k} {v:,}" for k, v in self.operations.items())
        s = (
            f"{self.target:,} lines = {self.originals:,} originals + {self.new:,} new "
            f"+ {self.repeats:,} exact repeats (seed {self.seed}; new by operation: {ops or 'none'})"
        )
        if self.input_duplicates:
            s += f"; the input itself had {self.input_duplicates:,} duplicate lines"
        if self.exhausted_at is not None and self.exhausted_at < self.target:
            s += (
                f"; no operation could make a new line after {self.exhausted_at:,} lines, so the other "
                f"{self.target - self.exhausted_at:,} are exact repeats (the input has too little variety "
                "for the operations: few clauses, 'the <noun>' phrases or droppable words)"
            )
        return s


def _words(line: str) -> list[str]:
    return line.split()


def _core(word: str) -> str:
    return word.strip(_STRIP).lower()


_STARTERS = frozenset(
    "the a an we he she they it i you our his her their my nobody everyone someone every "
    "then there this that its".split()
)
# Words that can usually go without breaking the sentence (drop_word removes only these).
_DROPPABLE = frozenset(
    "very old little small big long whole still just quietly slowly all always never even "
    "only suddenly finally again once bright warm cold quiet young thin heavy".split()
)


def _boundaries(words: list[str]) -> tuple[list[int], list[int]]:
    """Where a new clause starts; index = first word of the tail.

    (after ``,;:`` and before a clause opener such as "the" or "she",
    before a conjunction that is followed by a clause opener).
    """
    punct = [
        i for i in range(2, len(words) - 2)
        if words[i - 1][-1] in _CLAUSE_PUNCT and _core(words[i]) in _STARTERS
    ]
    conj = [
        i for i in range(2, len(words) - 2)
        if _core(words[i]) in _CONJUNCTIONS and words[i].isalpha() and _core(words[i + 1]) in _STARTERS
        and words[i - 1][-1] not in _CLAUSE_PUNCT
    ]
    return punct, conj


def _op_recombine(
    rng: random.Random, lines: list[list[str]], bounds: list, cands: dict
) -> tuple[str, tuple[int, ...]] | None:
    """The first clause of one line + the rest of another, joined at the same kind of boundary."""
    kind = rng.choice(("punct", "conj"))
    k = 0 if kind == "punct" else 1
    pool = cands[kind]
    if len(pool) < 2:
        return None
    a, b = rng.choice(pool), rng.choice(pool)
    if a == b:
        return None
    i = rng.choice(bounds[a][k])
    j = rng.choice(bounds[b][k])
    return " ".join(lines[a][:i] + lines[b][j:]), (a, b)


def _op_drop(
    rng: random.Random, lines: list[list[str]], bounds: list, cands: dict
) -> tuple[str, tuple[int, ...]] | None:
    """Remove one inner modifier ("old", "little", "quietly", ...)."""
    if not cands["drop"]:
        return None
    a = rng.choice(cands["drop"])
    w = list(lines[a])
    i = rng.choice([i for i in range(1, len(w) - 1) if w[i].isalpha() and w[i].lower() in _DROPPABLE])
    del w[i]
    return " ".join(w), (a,)


def _op_swap(
    rng: random.Random, lines: list[list[str]], bounds: list, cands: dict
) -> tuple[str, tuple[int, ...]] | None:
    """Swap the two words around "and"/"or" at the end of a phrase: "bread and cheese," -> "cheese and bread,"."""
    if not cands["swap"]:
        return None
    a = rng.choice(cands["swap"])
    w = list(lines[a])
    i = rng.choice(_swap_points(w))
    left, right = w[i - 1], w[i + 1]
    core_r = right.rstrip(_STRIP)
    tail = right[len(core_r):]
    w[i - 1], w[i + 1] = core_r, left + tail
    return " ".join(w), (a,)


_DETERMINERS = frozenset("the his her our my their".split())
_NOT_NOUNS = _STARTERS | _CONJUNCTIONS | _DROPPABLE
_AFTER_NOUN = frozenset(
    "of in on at from to with by for into over under across along beside behind near".split()
) | _CONJUNCTIONS


def _noun_slots(w: list[str]) -> list[int]:
    """Indices of likely nouns: after "the"/"his"/..., before punctuation, a preposition or the end."""
    out = []
    for i in range(1, len(w)):
        word = w[i]
        core = word.rstrip(_STRIP)
        if not (core.isalpha() and core.islower() and len(core) > 2):
            continue
        if w[i - 1].lower() not in _DETERMINERS or core in _NOT_NOUNS:
            continue
        ends_phrase = core != word or i + 1 == len(w) or w[i + 1].lower() in _AFTER_NOUN
        if ends_phrase:
            out.append(i)
    return out


def _plural(noun: str) -> bool:
    return noun.endswith("s") and not noun.endswith("ss")


def _op_replace_noun(
    rng: random.Random, lines: list[list[str]], bounds: list, cands: dict
) -> tuple[str, tuple[int, ...]] | None:
    """Put a noun from another line in place of one noun: "the harbour" -> "the orchard"."""
    if len(cands["noun"]) < 2:
        return None
    a, b = rng.choice(cands["noun"]), rng.choice(cands["noun"])
    if a == b:
        return None
    w = list(lines[a])
    i = rng.choice(cands["noun_slots"][a])
    core = w[i].rstrip(_STRIP)
    donors = [lines[b][j].rstrip(_STRIP) for j in cands["noun_slots"][b]]
    donors = [d for d in donors if _plural(d) == _plural(core) and d != core]
    if not donors:
        return None
    w[i] = rng.choice(donors) + w[i][len(core):]
    return " ".join(w), (a, b)


def _op_recombine_replace(
    rng: random.Random, lines: list[list[str]], bounds: list, cands: dict
) -> tuple[str, tuple[int, ...]] | None:
    """`recombine`, then `replace_noun` on the result: many more lines, each further from real text."""
    made = _op_recombine(rng, lines, bounds, cands)
    if made is None or len(cands["noun"]) < 1:
        return None
    w = made[0].split()
    slots = _noun_slots(w)
    c = rng.choice(cands["noun"])
    if not slots:
        return None
    i = rng.choice(slots)
    core = w[i].rstrip(_STRIP)
    donors = [lines[c][j].rstrip(_STRIP) for j in cands["noun_slots"][c]]
    donors = [d for d in donors if _plural(d) == _plural(core) and d != core]
    if not donors:
        return None
    w[i] = rng.choice(donors) + w[i][len(core):]
    return " ".join(w), (*made[1], c)


def _swap_points(w: list[str]) -> list[int]:
    return [
        i for i in range(2, len(w) - 1)
        if w[i] in ("and", "or") and w[i - 1].isalpha() and w[i - 1].islower()
        and w[i + 1].rstrip(_STRIP).isalpha() and w[i + 1].islower()
        and (i + 2 == len(w) or w[i + 1][-1] in _CLAUSE_PUNCT + ".!?")
        and _core(w[i - 1]) not in _NOT_NOUNS
        and _core(w[i + 1]) not in _NOT_NOUNS
    ]


_OPERATIONS = (
    ("recombine", 0.4, _op_recombine),
    ("replace_noun", 0.3, _op_replace_noun),
    ("recombine+replace_noun", 0.1, _op_recombine_replace),
    ("drop_word", 0.1, _op_drop),
    ("swap_words", 0.1, _op_swap),
)


MAX_TARGET = 10_000_000
"""The most lines `expand_lines` makes: all of them are held in memory (about a gigabyte of text
at this size), and long before it the made lines are almost all exact repeats."""


def expand_lines(
    lines: Sequence[str],
    target: int,
    seed: int = 0,
    *,
    forbidden: Iterable[str] = (),
    shuffle: bool = True,
    max_tries: int = 30,
    retire_after: int = 300,
) -> tuple[list[str], ExpandReport]:
    """Grow one-example-per-line data to exactly `target` lines.

    Every input line is kept; the rest are made by operations chosen to keep text
    plausible: ``recombine`` (the first clause of one line + the rest of another, split
    at a comma/semicolon/colon or before a conjunction), ``replace_noun`` (a noun from
    another line), both in turn, ``drop_word`` (remove one inner modifier) and
    ``swap_words`` ("bread and cheese" -> "cheese and bread"). A made line
    that already exists, or is in `forbidden` (pass the validation lines), is retried;
    after `max_tries` misses an original is repeated and counted as a repeat, and an
    operation that misses `retire_after` times in a row is retired. Once every
    operation is retired, the rest of `target` is filled with exact repeats of
    originals and ``report.exhausted_at`` says after how many lines. The same
    seed gives the same output (`random.Random(seed)`, no set or hash order involved).
    With `shuffle`, originals and made lines are mixed in a seeded order.

    Returns ``(lines, report)``; see `ExpandReport`.
    """
    src = [str(s).rstrip("\r\n") for s in lines]
    if any("\n" in s for s in src):
        raise CourseInputError("expand_lines: each line must be a single line (one contains a newline)")
    if not src:
        raise CourseInputError("expand_lines: no input lines (need at least one non-empty line)")
    if isinstance(target, bool) or not isinstance(target, int):
        raise CourseInputError(f"target: expected a whole number of lines, got {target!r}")
    if target < len(src):
        raise CourseInputError(
            f"target={target:,} is smaller than the {len(src):,} input lines; expansion only adds "
            f"lines, so use a target of at least {len(src):,}"
        )
    if target > MAX_TARGET:
        raise CourseInputError(f"target={target:,} is more than MAX_TARGET = {MAX_TARGET:,} lines, the most "
                               "expansion makes (every line is held in memory)")
    rng = random.Random(seed)
    words = [_words(s) for s in src]
    bounds = [_boundaries(w) for w in words]
    cands = {
        "punct": [i for i, b in enumerate(bounds) if b[0]],
        "conj": [i for i, b in enumerate(bounds) if b[1]],
        "drop": [i for i, w in enumerate(words)
                 if any(x.isalpha() and x.lower() in _DROPPABLE for x in w[1:-1])],
        "swap": [i for i, w in enumerate(words) if _swap_points(w)],
        "noun_slots": [_noun_slots(w) for w in words],
    }
    cands["noun"] = [i for i, slots in enumerate(cands["noun_slots"]) if slots]
    seen = set(src)
    banned = set(forbidden)
    out = list(src)
    parents: list[tuple[int, ...]] = [(i,) for i in range(len(src))]
    ops: dict[str, int] = {name: 0 for name, _, _ in _OPERATIONS}
    names = [o[0] for o in _OPERATIONS]
    weights = [o[1] for o in _OPERATIONS]
    fns = {o[0]: o[2] for o in _OPERATIONS}
    new = repeats = banned_hits = 0
    misses = dict.fromkeys(names, 0)  # consecutive misses; an exhausted operation is retired
    exhausted_at: int | None = None
    while len(out) < target:
        if exhausted_at is None and not any(weights):
            exhausted_at = len(out)  # no operation can make a new line: the rest are repeats
        for _ in range(0 if exhausted_at is not None else max_tries):
            if not any(weights):
                break
            name = rng.choices(names, weights)[0]
            made = fns[name](rng, words, bounds, cands)
            line, par = made if made is not None else ("", ())
            if made is None or line in seen or line in banned:
                banned_hits += line in banned
                misses[name] += 1
                if misses[name] >= retire_after:
                    weights[names.index(name)] = 0.0
                continue
            misses[name] = 0
            seen.add(line)
            out.append(line)
            parents.append(par)
            ops[name] += 1
            new += 1
            break
        else:  # no new line in max_tries attempts (or none possible): repeat an original
            i = rng.randrange(len(src))
            out.append(src[i])
            parents.append((i,))
            repeats += 1
    if shuffle:
        order = list(range(len(out)))
        rng.shuffle(order)
        out = [out[i] for i in order]
        parents = [parents[i] for i in order]
    report = ExpandReport(
        target=target,
        originals=len(src),
        new=new,
        repeats=repeats,
        operations=ops,
        input_duplicates=len(src) - len(set(src)),
        forbidden_hits=banned_hits,
        seed=seed,
        exhausted_at=exhausted_at,
        parents=parents,
    )
    return out, report
