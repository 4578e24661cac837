"""Write data/instructions.jsonl and data/modern_english.jsonl, the sets notebook 09 fine-tunes on.

    python scripts/make_instructions.py

The rows come from `course_lib.finetune.make_instructions()` (seeded: the same file every
time; tests/test_finetune.py checks the committed file against it), and the modern-English
set from `make_modern_english()` (spans of data/tinyshakespeare.txt). See data/README.md.
"""

from __future__ import annotations

from pathlib import Path

from course_lib.finetune import (
    INSTRUCTIONS_FILE,
    MODERN_FILE,
    make_instructions,
    make_modern_english,
    write_instructions,
)

if __name__ == "__main__":
    data = Path(__file__).resolve().parent.parent / "data"
    for name, rows in ((INSTRUCTIONS_FILE, make_instructions()), (MODERN_FILE, make_modern_english())):
        out = write_instructions(data / name, rows)
        print(f"wrote {out}: {len(rows)} rows, {sum(r['split'] == 'test' for r in rows)} held out, "
              f"{out.stat().st_size:,} bytes")
