"""graphrec's docstrings, written in PyG's reST style, rendered by mkdocstrings.

The docstrings keep the reST markup that PyG, torch and Sphinx users read in
``help()`` and in their editors: ``:class:`SessionBatch```, ``:math:`x```,
``.. math::`` blocks and ``"Title" <url>`_`` links. mkdocstrings reads Markdown,
so this Griffe extension rewrites that markup before the docstrings are parsed:

- roles (``:class:``, ``:func:``, ``:meth:``, ``:attr:``, ``:mod:``, ``:data:``,
  ``:obj:``; ``~`` for the short title, ``title <target>``) become autorefs
  cross-references, resolved in the scope of the object documented (a name
  that is not on a page renders as code, never as a broken link);
- ``:math:`...``` and ``.. math::`` blocks become MathML, converted here at
  build time (:func:`latex_to_mathml`): the pages need no script and no network
  to show formulas, and underscores inside them never turn into italics;
- ``"Title" <url>`_`` links become Markdown links, and a literal block
  announced by ``::`` keeps a single colon.

mkdocs.yml loads it as a Griffe extension of mkdocstrings' Python handler;
``docs/_tools/hooks.py`` converts the Markdown pages' ``$...$`` math the same way.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Callable

import griffe
from latex2mathml.converter import convert

ROLES = ("class", "func", "meth", "attr", "mod", "data", "obj", "exc")

_ROLE = re.compile(r":(?P<role>[a-z]+):`(?P<body>[^`]+)`")
_MATH_ROLE = re.compile(r":math:`(?P<tex>[^`]+)`")
_LINK = re.compile(r"`(?P<title>[^`<]+?)\s*<(?P<url>[^>\s]+)>`__?", re.DOTALL)
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*$")


def latex_to_mathml(tex: str, display: bool = False) -> str:
    """MathML of a LaTeX formula (block-level with ``display``).

    A block holding alignment marks (``&``) outside an environment is set as
    an array of right- and left-aligned columns, one row per blank-line-separated
    equation, as Sphinx aligns such a block.
    """
    tex = tex.strip()
    if display and "&" in tex and "\\begin{" not in tex:
        rows = [" ".join(row.split()) for row in re.split(r"\n\s*\n", tex)]
        columns = max(row.count("&") for row in rows) + 1
        spec = ("rl" * columns)[:columns]
        tex = f"\\begin{{array}}{{{spec}}}" + " \\\\ ".join(rows) + "\\end{array}"
    tex = " ".join(tex.split())  # line breaks inside a formula are spaces
    mathml = convert(tex, display="block" if display else "inline")
    # inline formulas in a span: a line that starts with one stays in its paragraph
    return mathml if display else f'<span class="math">{mathml}</span>'


def _math_blocks(text: str) -> str:
    """``.. math::`` directives -> MathML blocks (one per blank-line-separated equation)."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        found = _DIRECTIVE.match(lines[i])
        if not found:
            out.append(lines[i])
            i += 1
            continue
        indent = len(found["indent"].expandtabs())
        body: list[str] = []
        i += 1
        while i < len(lines):
            line = lines[i]
            deeper = len(line) - len(line.lstrip()) > indent
            if line.strip() and not deeper:
                break
            body.append(line)
            i += 1
        while body and not body[-1].strip():
            body.pop()
        equations = textwrap.dedent("\n".join(body)).strip()
        has_alignment = "&" in equations and "\\begin{" not in equations
        parts = [equations] if has_alignment else re.split(r"\n\s*\n", equations)
        pad = " " * indent
        out.append("")
        for part in parts:
            mathml = latex_to_mathml(part, display=True)
            out.append(f'{pad}<div class="math">{mathml}</div>')
            out.append("")
    return "\n".join(out)


def rst_to_markdown(text: str, resolve: Callable[[str], str | None] | None = None) -> str:
    """Rewrite the reST markup of a docstring as Markdown (see the module's docstring).

    Args:
        text: the docstring.
        resolve: the full path of a role's target (``"SessionBatch"`` ->
            ``"graphrec.data.SessionBatch"``), or ``None`` when unknown.
    """
    text = _math_blocks(text)
    text = _MATH_ROLE.sub(lambda m: latex_to_mathml(m["tex"]), text)

    def role(match: re.Match) -> str:
        kind, body = match["role"], match["body"].strip()
        if kind not in ROLES:
            return match.group(0)
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", body, re.DOTALL)
        if explicit:
            title, target = explicit["title"], explicit["target"]
        else:
            target = body.lstrip("~")
            title = target.rsplit(".", 1)[-1] if body.startswith("~") else target
        target = target.removesuffix("()")
        if kind in ("func", "meth") and not explicit and not title.endswith(")"):
            title += "()"
        full = (resolve(target) if resolve else None) or target
        code = f"<code>{html.escape(title)}</code>"
        return f'<autoref identifier="{html.escape(full)}" optional>{code}</autoref>'

    text = _ROLE.sub(role, text)
    text = _LINK.sub(lambda m: f"[{' '.join(m['title'].split())}]({m['url']})", text)
    # a literal block announced by "::" ("writes a folder::") keeps one colon
    text = re.sub(r"(?<=\S)::[ \t]*$", ":", text, flags=re.MULTILINE)
    return text


def resolver(obj: griffe.Object) -> Callable[[str], str | None]:
    """Resolve a role's target in the scope of ``obj`` (its members, its module's
    names, its parents'), then as an absolute path."""

    def resolve(target: str) -> str | None:
        head, _, rest = target.partition(".")
        scope: griffe.Object | None = obj
        while scope is not None:
            try:
                found = scope.resolve(head)
            except griffe.NameResolutionError:
                found = None
            # members, inherited ones included (a method a class gets from its base)
            members = scope.all_members if scope.is_class else scope.members
            if found is None and head in members:
                found = members[head].canonical_path  # where an inherited one is defined
            if found is not None:
                return f"{found}.{rest}" if rest else found
            scope = scope.parent
        return target if target.startswith("graphrec") else None

    return resolve


def _walk(obj: griffe.Object, seen: set[int]):
    if id(obj) in seen:
        return
    seen.add(id(obj))
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member, seen)


class RstMarkup(griffe.Extension):
    """Griffe extension: graphrec's reST docstrings -> Markdown, once a package is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: object) -> None:
        for obj in _walk(pkg, set()):
            if obj.docstring is not None:
                obj.docstring.value = rst_to_markdown(obj.docstring.value, resolver(obj))
