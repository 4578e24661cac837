"""Careful file handling shared by every room: UTF-8 reading, output folders, atomic writes.

Nothing a user made is silently overwritten: `prepare_output_dir` refuses an existing
non-empty folder unless told otherwise, and `atomic_dir` writes into a temporary
sibling folder that is renamed into place only when complete.

Introduced in notebooks/01_tokenization.ipynb; `JsonConfig` in notebook 05;
`build_once()` in notebook 07.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from .errors import CourseInputError

_C = TypeVar("_C", bound="JsonConfig")


# State-dict keys that are not weights to carry between the course GPT and transformers:
# lm_head.weight (tied to transformer.wte.weight), GPT-2's causal-mask buffers (.attn.bias,
# .attn.masked_bias, kept by older checkpoints) and Llama's rotary table. One list for model.py's
# conversions and the Trainer's checkpoint loading.
IGNORED_STATE_KEYS = ("lm_head.weight", ".attn.bias", ".attn.masked_bias", "rotary_emb.inv_freq")


def ignored_state_key(key: str) -> bool:
    """True for a state-dict key in `IGNORED_STATE_KEYS` (it may be missing or extra)."""
    return key.endswith(IGNORED_STATE_KEYS)


def read_text(path: str | os.PathLike, flag: str = "path") -> str:
    """Read a UTF-8 text file, or raise `CourseInputError` naming the file and problem.

    A missing file, a folder, an empty (or white-space-only) file and bytes that are not
    UTF-8 (with the byte offset of the first bad byte) each get their own message. `flag` names the option
    the path came from (for example ``--text``) so the message points at it.
    """
    p = Path(path)
    if not p.exists():
        raise CourseInputError(f"{flag}: file not found: {p}")
    if p.is_dir():
        raise CourseInputError(f"{flag}: {p} is a folder; expected a UTF-8 text file")
    data = p.read_bytes()
    empty = f"{flag}: {p} is empty; expected a UTF-8 text file with some text"
    if not data.strip():
        raise CourseInputError(empty)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CourseInputError(
            f"{flag}: {p} is not valid UTF-8 (first bad byte at offset {e.start}: "
            f"{data[e.start:e.start + 1]!r}); re-save it as UTF-8"
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():  # only a byte-order mark or Unicode spaces (no-break, ideographic, ...)
        raise CourseInputError(empty + " (it holds only white space)")
    return text


def prepare_output_dir(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    resume: bool = False,
    flag: str = "--out",
    offer_resume: bool = False,
) -> Path:
    """Make sure `path` may be written, creating it when absent.

    An existing non-empty folder is refused with a message naming it, unless
    `overwrite` (its contents are removed) or `resume` (kept as is) is set.
    `offer_resume` adds "or --resume to continue it" to the message, for commands
    that have that flag.
    """
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CourseInputError(f"{flag}: {p} exists and is a file, not a folder")
    if p.is_dir() and any(p.iterdir()):
        if resume:
            return p
        if not overwrite:
            raise CourseInputError(
                f"{flag}: {p} already exists and is not empty; nothing was changed. "
                "Pass --overwrite to replace it"
                + (" or --resume to continue it" if offer_resume else "")
                + ", or choose another folder."
            )
        shutil.rmtree(p)
    p.mkdir(parents=True, exist_ok=True)
    return p


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Write a folder atomically: yields a temporary sibling, renamed to `path` on success.

    An existing `path` is replaced only after the new one is complete, so an
    interruption leaves either the old folder or the new one, never half of one.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        usual_permissions(tmp)  # mkdtemp made it owner-only; others may read it as they would a mkdir
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_atomic(path: str | os.PathLike, content: bytes | Callable[[BinaryIO], object]) -> Path:
    """Write a file atomically: a temporary sibling, renamed to `path` once complete.

    `content` is the bytes to write, or a function that writes into the open binary file
    (``lambda f: np.save(f, ids)``). An interruption leaves the old file or the new one,
    never half of one; the new file gets the usual modes for the umask.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, bytes):
                f.write(content)
            else:
                content(f)
        usual_permissions(tmp)  # mkstemp made it owner-only
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return final


def settings_key(settings: Any, text: str = "") -> str:
    """A short hash of a settings dataclass (and the text it trains on): a cache folder's name."""
    import hashlib

    h = hashlib.sha256(json.dumps(dataclasses.asdict(settings), sort_keys=True).encode())
    h.update(text.encode("utf-8"))
    return h.hexdigest()[:12]


def build_once(path: str | os.PathLike, build: Callable[[Path], Any], *, marker: str) -> Path:
    """The folder `path`, first built by ``build(tmp)`` when ``path / marker`` is not there yet.

    For what the course makes once and then reuses (the small models of notebook 08):
    `build` writes into a temporary sibling (`atomic_dir`), which is renamed
    to `path` when complete; `marker` (a file `build` writes last) says it is. When two
    processes build at once, the first to finish wins and the other's copy is removed, so
    `path` is never half written and never replaced under a reader.
    """
    final = Path(path)
    if (final / marker).is_file():
        return final
    built = final.with_name(f".{final.name}.build-{os.getpid()}")
    with atomic_dir(built) as tmp:
        build(tmp)
    try:
        os.rename(built, final)  # first finished process wins; the folder is never half written
    except OSError:
        if not (final / marker).is_file():
            raise
        shutil.rmtree(built, ignore_errors=True)
    return final


def current_umask() -> int:
    """The process's umask, read without changing it where Linux's /proc allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (the only portable way to read it)
    os.umask(mask)
    return mask


def usual_permissions(path: str | os.PathLike) -> None:
    """Give `path` (a file, or a folder and all it holds) the mode a plain mkdir/open gives.

    `tempfile.mkdtemp` and `mkstemp` make owner-only folders (0o700) and files (0o600),
    so output written through them and renamed into place would be unreadable to others
    on a shared machine. Folders become 0o777 and files 0o666 (0o777 if executable),
    minus the umask. Nothing happens on Windows, which has no such modes.
    """
    if os.name == "nt":
        return
    mask = current_umask()
    root = Path(path)

    def fix(p: Path, is_dir: bool) -> None:
        if p.is_symlink():
            return
        executable = is_dir or bool(p.stat().st_mode & 0o111)
        os.chmod(p, (0o777 if executable else 0o666) & ~mask)

    fix(root, root.is_dir())
    if root.is_dir():
        for here, dirs, files in os.walk(root):
            for name in dirs:
                fix(Path(here) / name, True)
            for name in files:
                fix(Path(here) / name, False)


class JsonConfig:
    """Mixin for config dataclasses: a round trip through dicts and JSON text or files.

    Unknown keys are refused by name, so a typo in a config file is an error, not a
    silently ignored setting. Used by `model.GPTConfig` and `train.TrainConfig`.
    """

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[_C], d: dict[str, Any]) -> _C:
        """Build from a dict; unknown keys are named in the error."""
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(d) - known
        if unknown:
            raise CourseInputError(f"{cls.__name__}: unknown fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The config as JSON text; also written to `path` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_json(cls: type[_C], path_or_text: str | os.PathLike) -> _C:
        """Read JSON text, or a JSON file written by `to_json`."""
        s = str(path_or_text)
        text = s if s.lstrip().startswith("{") else Path(s).read_text(encoding="utf-8")
        return cls.from_dict(json.loads(text))
