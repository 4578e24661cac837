"""Write data/instructions.jsonl, the instruction set notebook 09 fine-tunes on.

    python scripts/make_instructions.py

The rows come from `course_lib.finetune.make_instructions()` (seeded: the same file every
time; tests/test_finetune.py checks the committed file against it). See data/README.md.
"""

from __future__ import annotations

from pathlib import Path

from course_lib.finetune import INSTRUCTIONS_FILE, make_instructions, write_instructions

if __name__ == "__main__":
    out = write_instructions(Path(__file__).resolve().parent.parent / "data" / INSTRUCTIONS_FILE)
    rows = make_instructions()
    print(f"wrote {out}: {len(rows)} rows, {sum(r['split'] == 'test' for r in rows)} held out, "
          f"{out.stat().st_size:,} bytes")
