"""bertviz without the internet: its require.js, d3 and jQuery from copies that ship with the course.

bertviz 1.4's head and model views load require.js 2.3.6, d3 5.7.0 and jQuery from
cdnjs, so in a classroom without a network they stay blank. `offline_html` takes the
HTML bertviz returns (``html_action="return"``) and

- replaces the ``<script src=".../require.min.js">`` tag with the vendored require.js,
  inlined;
- inlines d3 and jQuery, each run as a CommonJS module (so neither touches the page's
  own ``define``/``$``), and registers them with require.js as the named modules
  ``d3`` and ``jquery`` that bertviz's script asks for;
- rewrites the CDN addresses in bertviz's ``require.config`` paths to local names, so
  nothing is ever fetched.

The result is one self-contained HTML string (about 0.4 MB plus the weights) that renders
in JupyterLab, Notebook 7, VS Code, Colab or a plain page. The files, their versions,
sources and licenses are listed in ``course_lib/viz/static/README.md``.

Used by `course_lib.viz.attention.head_view` / `model_view`
(notebooks/08_attention_visualization.ipynb).

Introduced in notebooks/08_attention_visualization.ipynb.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["STATIC_DIR", "ASSETS", "Asset", "asset_text", "offline_html"]

STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass(frozen=True)
class Asset:
    """One vendored script: its file under `STATIC_DIR`, version and license file."""

    name: str
    file: str
    version: str
    license_file: str


ASSETS: dict[str, Asset] = {
    "requirejs": Asset("requirejs", "require-2.3.6.js", "2.3.6", "LICENSE-requirejs.txt"),
    "d3": Asset("d3", "d3-5.7.0.min.js", "5.7.0", "LICENSE-d3.txt"),
    "jquery": Asset("jquery", "jquery-2.1.0.min.js", "2.1.0", "LICENSE-jquery.txt"),
}

_REQUIRE_TAG = re.compile(r"<script[^>]*\bsrc=[\"'][^\"']*require(?:\.min)?\.js[\"'][^>]*>\s*</script>")
_PATH_URL = re.compile(r"(\b(d3|jquery)\s*:\s*)(['\"])https?://[^'\"]*\3")


@functools.cache
def asset_text(name: str) -> str:
    """The text of one vendored script, safe to put inside a ``<script>`` element."""
    if name not in ASSETS:
        raise KeyError(f"no vendored script {name!r}; there are {', '.join(ASSETS)}")
    path = STATIC_DIR / ASSETS[name].file
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the course was installed without its package data "
                                "(reinstall it: pip install -e . or the wheel)")
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^//# sourceMappingURL=.*$", "", text, flags=re.M)
    return text.replace("</script", "<\\/script")


def _as_module(name: str) -> str:
    """A UMD script run as CommonJS in its own scope, then handed to require.js under `name`."""
    return (
        "<script type=\"text/javascript\">\n"
        f"/* {name} {ASSETS[name].version}, vendored by gpt2-course (course_lib/viz/static) */\n"
        "window.__courseBertviz = window.__courseBertviz || {};\n"
        f"if (!window.__courseBertviz[{name!r}]) {{ (function () {{\n"
        "var module = {exports: {}}; var exports = module.exports; var define = undefined;\n"
        f"{asset_text(name)}\n"
        f"window.__courseBertviz[{name!r}] = module.exports;\n"
        "}).call(window); }\n"
        f"if (typeof require.defined !== 'function' || !require.defined({name!r})) {{ define({name!r}, [], function () "
        f"{{ return window.__courseBertviz[{name!r}]; }}); }}\n"
        "</script>\n"
    )


def offline_html(html: str) -> str:
    """bertviz's HTML with require.js, d3 and jQuery inlined from the course's copies.

    Raises ValueError when `html` has no require.js tag to replace (bertviz changed how
    it loads its scripts), rather than returning a view that stays blank offline.
    """
    if not _REQUIRE_TAG.search(html):
        raise ValueError("offline_html: no <script src=...require.min.js> tag in bertviz's HTML; "
                         "this bertviz version loads its scripts differently (tested with bertviz 1.4)")
    head = (
        "<script type=\"text/javascript\">\n/* RequireJS "
        f"{ASSETS['requirejs'].version}, vendored by gpt2-course (course_lib/viz/static) */\n"
        f"{asset_text('requirejs')}\n</script>\n"
        + _as_module("jquery") + _as_module("d3")
    )
    out = _REQUIRE_TAG.sub(lambda _m: head, html, count=1)
    out = _PATH_URL.sub(lambda m: f"{m.group(1)}{m.group(3)}course-offline/{m.group(2)}{m.group(3)}", out)
    return out

