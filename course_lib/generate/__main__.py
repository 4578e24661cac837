"""``python -m course_lib.generate``: print the table of decoding strategies (what the README points to).

Introduced in notebooks/07_decoding_strategies.ipynb.
"""

from __future__ import annotations

from .registry import markdown_table

if __name__ == "__main__":
    print(markdown_table())
