"""The documentation site (docs/, mkdocs.yml): every example runs and prints what its page
shows, every page is in the navigation, the site builds without a warning, and the pictures
drawn from real runs are drawn."""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from tests.conftest import service_unavailable
from tests.markdown_examples import (
    ROOT,
    Example,
    examples,
    run_example,
    service_env,  # noqa: F401
)

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
EXAMPLES = [example for page in PAGES for example in examples(page)]
SVG = "{http://www.w3.org/2000/svg}"

# A ```text block right after a ```python block (only blank lines between) shows what the
# example prints: the last lines of its output (a continued example prints its earlier blocks'
# output first), or lines its warnings print on stderr.
_PRINTED = re.compile(
    r"^```python[ \t]*\n(?:(?!```).*\n)*```[ \t]*\n(?:[ \t]*\n)*```text[ \t]*\n"
    r"((?:(?!```).*\n)*)```[ \t]*$",
    re.M,
)


def printed_lines(page: Path) -> dict[int, list[str]]:
    """Line of each ```python fence of ``page`` that a ```text block follows -> its lines."""
    markdown = page.read_text(encoding="utf-8")
    return {
        markdown.count("\n", 0, match.start()) + 1: match.group(1).splitlines()
        for match in _PRINTED.finditer(markdown)
    }


PRINTED = {
    f"{page.relative_to(ROOT)}:{line}": lines
    for page in PAGES
    for line, lines in printed_lines(page).items()
}


def test_the_docs_have_examples_and_shown_output():
    pages = {example.source for example in EXAMPLES}
    assert {"docs/quickstart.md", "docs/keys.md", "docs/batches.md"} <= pages
    assert len(PRINTED) >= 10


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_example_runs_and_prints_what_the_page_shows(
    example: Example,
    tmp_path: Path,
    service_env,  # noqa: F811
):
    done = run_example(example, tmp_path, service_env(example))
    assert done.returncode == 0, f"{example} failed:\n{done.stderr}"
    shown = PRINTED.get(str(example))
    if shown is not None and done.stdout.splitlines()[-len(shown) :] != shown:
        warned = [line for line in shown if line not in done.stderr]
        assert warned == [], f"{example} printed:\n{done.stdout}\nand on stderr:\n{done.stderr}"


def first_example(page: str) -> Example:
    return examples(DOCS / page)[0]


def test_quick_start_computes_once_and_serves_the_second_run_from_the_cache(tmp_path: Path):
    script = first_example("quickstart.md")
    first = run_example(script, tmp_path)
    second = run_example(script, tmp_path)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.splitlines() == [
        "computing A...", "Processed: A", "computing B...", "Processed: B",
        "computing C...", "Processed: C", "Processed: A",
    ]  # fmt: skip
    assert second.stdout.splitlines() == [f"Processed: {text}" for text in "ABCA"]
    assert (tmp_path / "my_analysis.db").is_file()
    assert not (tmp_path / "my_analysis_blobs").exists()


# -- the navigation ------------------------------------------------------------------------------


def nav_pages(config: str) -> list[str]:
    """The pages the ``nav:`` of an mkdocs.yml lists, in order (read without a YAML library,
    so this runs where mkdocs is not installed).

    >>> nav_pages("nav:\\n  - Home: index.md\\n  - Guide:\\n      - a/b.md\\ntheme: x")
    ['index.md', 'a/b.md']
    """
    nav = re.search(r"^nav:\n((?:[ \t]+.*\n|\n)*)", config + "\n", re.M)
    assert nav is not None, "mkdocs.yml has no nav:"
    return re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?(\S+\.md)\s*$", nav.group(1), re.M)


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page():
    listed = nav_pages((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = [page.relative_to(DOCS).as_posix() for page in PAGES]
    assert [page for page, count in Counter(listed).items() if count > 1] == []
    assert sorted(set(pages) - set(listed)) == [], "pages missing from the nav of mkdocs.yml"
    assert sorted(set(listed) - set(pages)) == [], "nav entries of mkdocs.yml with no page"


def test_nav_pages_reads_our_config():
    assert nav_pages((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))[:2] == [
        "index.md",
        "quickstart.md",
    ]


# -- the site ------------------------------------------------------------------------------------


def require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        service_unavailable(f"{module} is not installed: pip install -e '.[docs]'")


@pytest.mark.slow
def test_site_builds_strictly_and_loads_nothing_from_outside(tmp_path: Path):
    require("mkdocs")
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stderr
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for anchor in (
        "beautyspot.Spot.mark",
        "beautyspot.KeyGen.from_path_stat",
        "beautyspot.Limiter",
    ):
        assert f'id="{anchor}"' in api
    assert "&gt;&gt;&gt;" in api and "<blockquote>" not in api  # doctests as code, not quotes
    outside = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""")
    for page in site.rglob("*.html"):
        found = outside.findall(page.read_text(encoding="utf-8"))
        assert found == [], f"{page.relative_to(site)} loads {found}"


def load_tool(name: str) -> ModuleType:
    """A script of docs/tools, imported (it is not a package)."""
    spec = importlib.util.spec_from_file_location(
        f"docs_tools_{name}", DOCS / "tools" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def test_docstring_rewriting_for_the_api_reference():
    require("griffe")
    failed, attempted = doctest.testmod(load_tool("griffe_docstrings"))
    assert attempted > 0 and failed == 0


# -- pictures drawn from real runs ---------------------------------------------------------------


def schedule_marks(svg: Path) -> list[ElementTree.Element]:
    root = ElementTree.parse(svg).getroot()  # raises on malformed XML
    assert root.tag == f"{SVG}svg"
    return [rect for rect in root.iter(f"{SVG}rect") if rect.get("class") == "call"]


def planned_costs() -> list[int]:
    plan = load_tool("gcra_schedule").PLAN
    return sorted(cost for runs in plan.values() for run in runs for cost in run)


def test_gcra_schedule_is_drawn_from_a_real_run(tmp_path: Path):
    output = tmp_path / "schedule.svg"
    done = subprocess.run(
        [sys.executable, str(DOCS / "tools" / "gcra_schedule.py"), str(output)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert done.returncode == 0, done.stderr
    marks = schedule_marks(output)
    assert sorted(int(mark.get("data-cost", "0")) for mark in marks) == planned_costs()
    for mark in marks:  # each call started no earlier than it asked
        assert float(mark.get("data-started", "nan")) >= float(mark.get("data-asked", "nan"))


def test_the_committed_schedule_is_one_the_script_drew():
    marks = schedule_marks(DOCS / "img" / "gcra-schedule.svg")
    assert sorted(int(mark.get("data-cost", "0")) for mark in marks) == planned_costs()
