"""The docs site: the docstrings' reST renders (roles, math, links), nothing raw is left."""

import builtins
import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_tools"))

griffe = pytest.importorskip("griffe")
pytest.importorskip("latex2mathml")
import check_pages  # noqa: E402
from rst_markup import _ROLE, ROLES, _walk, latex_to_mathml, resolver, rst_to_markdown  # noqa: E402


def test_roles_become_optional_cross_references():
    resolve = {"SessionBatch": "graphrec.data.SessionBatch"}.get
    out = rst_to_markdown("See :class:`SessionBatch` and :func:`~graphrec.evaluation.evaluate`.",
                          resolve)  # fmt: skip
    assert '<autoref identifier="graphrec.data.SessionBatch" optional>' in out
    assert "<code>SessionBatch</code>" in out
    assert (
        '<autoref identifier="graphrec.evaluation.evaluate" optional><code>evaluate()</code>' in out
    )
    titled = rst_to_markdown(":meth:`the loss <graphrec.models.SRGNN.loss>`")
    assert 'identifier="graphrec.models.SRGNN.loss"' in titled and "<code>the loss</code>" in titled
    assert rst_to_markdown(":unknown:`x`") == ":unknown:`x`"


def test_math_links_and_literal_blocks():
    out = rst_to_markdown("score :math:`\\mathbf{s}^\\top \\mathbf{v}_i` here")
    assert out.startswith('score <span class="math"><math') and "_" not in out.split("<math")[1]
    block = rst_to_markdown("Eq.:\n\n.. math::\n    a_i &= b\n\n    c &= d_j\n\nafter")
    assert block.count('<div class="math">') == 1 and "<mtable>" in block  # one aligned block
    assert block.rstrip().endswith("after") and "&amp;" not in block and "&=" not in block
    two = rst_to_markdown(".. math::\n    x = 1\n\n    y = 2\n")
    assert two.count('<div class="math">') == 2  # separate equations
    link = rst_to_markdown('from `"A Paper"\n    <https://arxiv.org/abs/1>`_ (2019)')
    assert link == 'from ["A Paper"](https://arxiv.org/abs/1) (2019)'
    assert rst_to_markdown("writes a folder::\n\n    x") == "writes a folder:\n\n    x"
    assert latex_to_mathml("x", display=True).startswith("<math xmlns")


def _targets():
    pkg = griffe.load("graphrec", docstring_parser="google")
    for obj in _walk(pkg, set()):
        if obj.docstring is None:
            continue
        resolve = resolver(obj)
        for match in _ROLE.finditer(obj.docstring.value):
            if match["role"] not in ROLES:
                continue
            body = match["body"].strip()
            explicit = re.fullmatch(r".+?\s*<(?P<target>[^>]+)>", body, re.DOTALL)
            target = (explicit["target"] if explicit else body.lstrip("~")).removesuffix("()")
            yield pkg, obj, match.group(0), target, resolve(target)


def _exists(path: str) -> bool:
    """Whether a dotted path names a Python object (builtins included)."""
    parts = path.split(".")
    if len(parts) == 1:
        return hasattr(builtins, path)
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return False
        return True
    return False


def test_every_cross_reference_names_a_real_object():
    broken = []
    for pkg, obj, role, target, full in _targets():
        if full is not None and full.startswith("graphrec"):
            try:
                pkg.get_member(full.removeprefix("graphrec."))
            except (KeyError, ValueError):
                broken.append((obj.path, role, full))
        elif not _exists(target):  # torch, pandas, builtins: must exist
            broken.append((obj.path, role, target))
    assert not broken, f"roles naming nothing: {broken}"


def test_built_site_has_no_raw_rest_and_renders_math(tmp_path):
    site = check_pages.build(tmp_path / "site")
    problems = check_pages.scan(site)
    assert not problems, problems
    models = (site / "api" / "models" / "index.html").read_text()
    assert models.count("<math") > 50 and "graphrec.nn.SRGNNConv</code></a>" in models
    assert "mathjax" not in models.lower()  # no script, no network


@pytest.mark.skipif(check_pages.browser() is None, reason="no Chromium here")
def test_pages_render_in_a_headless_browser(tmp_path):
    site = check_pages.build(tmp_path / "site")
    shots = check_pages.screenshots(site, tmp_path / "shots", pages=["api/models/index.html"])
    (shot,) = shots
    assert shot.stat().st_size > 50_000  # a page, not a blank or an error screen
    dom = check_pages.dump_dom(site / "api" / "models" / "index.html")
    assert dom.count("<math") > 50 and ":math:`" not in dom and ":class:`" not in dom


def test_check_pages_script_runs(tmp_path):
    """The documented script: `python docs/_tools/check_pages.py --out DIR`."""
    if shutil.which("mkdocs") is None:
        pytest.skip("mkdocs not installed")
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "_tools" / "check_pages.py"), "--out",
         str(tmp_path), "--no-screenshots"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no raw reST" in done.stdout


def test_quickstart_python_snippet_runs_on_the_demos_data(capsys):
    """The quick start's Python block, shortened (one epoch of three steps), runs as
    written: the same synthetic data as `graphrec demo`, the baselines included."""
    page = (ROOT / "docs" / "quickstart.md").read_text()
    code = re.search(r"## From Python\n\n```python\n(.*?)```", page, re.DOTALL)[1]
    assert 'load_dataset("synthetic"' in code  # the demo's log, not another one
    short = code.replace("epochs=5)", "epochs=1, max_steps_per_epoch=3, progress=False)")
    short = short.replace("hidden_channels=100", "hidden_channels=8")
    assert short != code
    exec(compile(short, "quickstart.md", "exec"), {})
    out = capsys.readouterr().out
    assert "S-POP" in out and "SR-GNN" in out and "tensor([[" in out
