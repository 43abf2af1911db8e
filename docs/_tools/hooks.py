"""mkdocs hooks: the Markdown pages' math as MathML, converted at build time.

``pymdownx.arithmatex`` (generic mode) marks ``$...$`` and ``$$...$$`` in the
pages; this hook replaces each marked formula by MathML
(:func:`rst_markup.latex_to_mathml`), so that no page loads a script to show
it, offline included.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from rst_markup import latex_to_mathml

_INLINE = re.compile(r'<span class="arithmatex">\\\((?P<tex>.*?)\\\)</span>', re.DOTALL)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(?P<tex>.*?)\\\]</div>', re.DOTALL)


def mathml_page(content: str) -> str:
    content = _BLOCK.sub(
        lambda m: f'<div class="math">{latex_to_mathml(html.unescape(m["tex"]), True)}</div>',
        content,
    )
    return _INLINE.sub(lambda m: latex_to_mathml(html.unescape(m["tex"])), content)


def on_page_content(html_text: str, **kwargs: object) -> str:
    return mathml_page(html_text)
