"""Regenerate figures/*.png from the drawing functions in course_lib.figures.

    python figures/make_figures.py            # all figures, next to this script
    python figures/make_figures.py --out DIR  # somewhere else
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course_lib.figures import FIGURES  # noqa: E402

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=HERE, help="folder for the PNGs (default: figures/)")
    p.add_argument("--dpi", type=int, default=110)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, draw in FIGURES.items():
        fig = draw()
        path = args.out / f"{name}.png"
        fig.savefig(path, dpi=args.dpi, bbox_inches="tight", facecolor="white")
        plt.close(fig)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
