"""Train notebook 08's two small models with their default settings and ship them.

    python scripts/train_toys.py

`course_lib.toys.cached_induction_model()` (a 2-layer GPT on repeated random tokens) and
`cached_char_model(Tiny Shakespeare)` (a character-level GPT), each on one CPU thread, seeded,
into a fresh cache; the folders (config.json, model.safetensors, heads.json with the training
history and times) are then copied to course_lib/assets/toys/, where the course loads them from.
A folder's name holds the hash of its settings (and text), so a changed setting trains anew.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    from course_lib import toys
    from course_lib.data import load_corpus

    text = load_corpus("shakespeare", verbose=False)  # the shipped copy, what notebook 08 reads
    with tempfile.TemporaryDirectory() as cache:
        os.environ["COURSE_DATA_DIR"] = cache  # train into a fresh cache
        toys.SHIPPED = Path(cache) / "none"  # never load the shipped ones
        models = [toys.cached_induction_model(), toys.cached_char_model(text)[0]]
        for model in models:
            folder = Path(model.source)
            dest = ROOT / "course_lib" / "assets" / "toys" / folder.name
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(folder, dest)
            print(f"shipped {dest.relative_to(ROOT)}: {sum(f.stat().st_size for f in dest.iterdir()):,} bytes")
