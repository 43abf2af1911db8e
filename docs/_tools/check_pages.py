"""Build the docs site and check what a reader sees.

    python docs/_tools/check_pages.py --out /tmp/pages

1. builds the site with ``mkdocs build --strict``;
2. scans every page for reST markup that did not render (``:class:`...```,
   ``:math:`...```, ``.. math::``, ``<url>`_``), raw ``<autoref>`` tags and
   formulas left to a script, and fails naming the page;
3. takes a screenshot of the API pages and of the concept page on evaluation
   with headless Chromium (``apt-get install chromium``), written to ``--out``
   to be looked at (skipped where no Chromium is installed, or with
   ``--no-screenshots``).

``tests/test_docs.py`` runs the same checks.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: markup that must never reach a page
RAW = {
    "a reST role": re.compile(r":(?:class|func|meth|attr|mod|data|obj|exc|math):`"),
    "a reST math block": re.compile(r"\.\. math::"),
    "a reST link": re.compile(r"&gt;`_|>`_"),
    "a raw autoref tag": re.compile(r"<autoref"),
    "a formula left to a script": re.compile(r'class="arithmatex"'),
}

PAGES = [
    "api/models/index.html",
    "api/nn/index.html",
    "api/data/index.html",
    "api/evaluation/index.html",
    "concepts/evaluation/index.html",
]


def build(site: Path) -> Path:
    """``mkdocs build --strict`` into ``site``."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"mkdocs build failed:\n{done.stderr[-3000:]}")
    return site


def scan(site: Path) -> list[str]:
    """Every page that shows raw markup, and what (empty when all is well)."""
    problems = []
    for page in sorted(site.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        # code blocks may show reST on purpose (the tutorials quote none, the API none)
        text = re.sub(r"<pre.*?</pre>", "", text, flags=re.DOTALL)
        for what, pattern in RAW.items():
            found = pattern.search(text)
            if found:
                around = text[max(0, found.start() - 60) : found.end() + 60].replace("\n", " ")
                problems.append(f"{page.relative_to(site)}: {what}: ...{around}...")
    return problems


def browser() -> str | None:
    """A headless-capable Chromium on this machine, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _chromium(*args: str) -> subprocess.CompletedProcess:
    command = [browser(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def screenshots(site: Path, out: Path, pages: list[str] = PAGES) -> list[Path]:
    """PNG screenshots of ``pages`` (1280 x 2400), written to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    for page in pages:
        shot = out / (page.replace("/index.html", "").replace("/", "-") + ".png")
        done = _chromium("--window-size=1280,2400", f"--screenshot={shot}",
                         (site / page).as_uri())  # fmt: skip
        if not shot.is_file():
            raise RuntimeError(f"no screenshot of {page}: {done.stderr[-500:]}")
        shots.append(shot)
    return shots


def dump_dom(page: Path) -> str:
    """The page's DOM after the browser has loaded it."""
    return _chromium("--dump-dom", page.as_uri()).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs-check", help="site and screenshots go here")
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out)
    site = build(out / "site")
    problems = scan(site)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} page(s) show raw markup")
        return 1
    pages = len(list(site.rglob("*.html")))
    print(f"{pages} pages built: no raw reST, no raw autoref, every formula is MathML")
    if args.no_screenshots:
        return 0
    if browser() is None:
        print("no Chromium: screenshots skipped (apt-get install chromium)")
        return 0
    for shot in screenshots(site, out / "screenshots"):
        print(f"screenshot: {shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
