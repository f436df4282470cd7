"""README.md's examples run as written and print what the README says they print; README.ja.md
and CHANGELOG.md cannot drift from it or from the package.

Each example runs on its own in a fresh folder, or after the block it continues (see
tests/markdown_examples.py), as a reader who copies one block would run it. README.ja.md is
README.md in Japanese with byte-identical code blocks (checked below), so its examples are the
same programs: running README.md's is enough.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.markdown_examples import (
    ROOT,
    Example,
    examples,
    python_blocks,
    run_example,
    service_env,  # noqa: F401
)

import beautyspot as bs

README = ROOT / "README.md"
README_JA = ROOT / "README.ja.md"
CHANGELOG = ROOT / "CHANGELOG.md"

README_EXAMPLES = examples(README)

#: The ``service_env`` fixture: the environment variables that point an example at a service.
ServiceEnv = Callable[[Example], dict[str, str]]

#: What the key examples print first: a line of code that names the example, and its lines.
PRINTS_FIRST = {
    "print(heavy_process(text))": [
        "computing A...",
        "Processed: A",
        "computing B...",
        "Processed: B",
        "computing C...",
        "Processed: C",
        "Processed: A",
    ],
    'print(analyze("a.txt"))': ["HELLO", "HELLO", "True"],
    "print(make_scaler(2)(10), make_scaler(3)(10))": ["20 30", "10 15"],
    'print(load_model("bert").name, load_model("bert").name)': ["bert bert"],
    'print([call_api(p) for p in ["a", "b", "a"]])': [
        "['answer to a', 'answer to b', 'answer to a']"
    ],
    'print(forgot_the_limiter("a"), tokenize("a b"))': ["A ['a', 'b']"],
    "print(summaries[:2])": ["['ber 0', 'ber 1']"],
    'print(embed("hello world"), embed.is_cached("hello world"))': ["[11, 1] True"],
    "print(price.explain(4).would_hit)": [
        "True",
        "('argument quantity: stored 4 (int), now 4.0 (float)',)",
    ],
    'print(list(reply("what is it?")))       # streamed': [
        "['Memoization', 'keeps', 'results.']",
        "['Memoization', 'keeps', 'results.']",
    ],
}

_FENCED = re.compile(r"^```([\w-]*)[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_HEADING = re.compile(r"^(#{1,6}) ", re.M)


def example_with(line_of_code: str) -> Example:
    """The one README example whose own block holds ``line_of_code``."""
    found = [ex for ex in README_EXAMPLES if line_of_code in _own_block(ex)]
    assert len(found) == 1, f"{len(found)} README.md examples hold {line_of_code!r}"
    return found[0]


def _own_block(example: Example) -> str:
    """The example's last block (without the blocks it continues)."""
    markdown = (ROOT / example.source).read_text(encoding="utf-8")
    return next(code for line, code in python_blocks(markdown) if line == example.line)


def _waits(example: Example) -> bool:
    """Whether the example sleeps or is paced (a Spot or Limiter with a rate)."""
    return "time.sleep" in example.code or "tpm=" in example.code


def _fenced_blocks(markdown: str) -> list[tuple[str, str]]:
    """Every fenced block of ``markdown``: (its language, its text), in order."""
    return [(match.group(1), match.group(2)) for match in _FENCED.finditer(markdown)]


def _heading_levels(markdown: str) -> list[int]:
    """The level of every heading outside fenced blocks (a ``# comment`` in code is none)."""
    prose = _FENCED.sub("", markdown)
    return [len(hashes) for hashes in _HEADING.findall(prose)]


@pytest.mark.parametrize(
    "example",
    [
        pytest.param(ex, id=str(ex), marks=[pytest.mark.slow] if _waits(ex) else [])
        for ex in README_EXAMPLES
    ],
)
def test_readme_example_runs_on_its_own(
    example: Example,
    tmp_path: Path,
    service_env: ServiceEnv,  # noqa: F811
) -> None:
    done = run_example(example, tmp_path, service_env(example))
    assert done.returncode == 0, f"{example} failed:\n{done.stderr}"
    lines = done.stdout.splitlines()
    for line_of_code, expected in PRINTS_FIRST.items():
        if line_of_code in _own_block(example):
            assert lines[: len(expected)] == expected, f"{example} printed:\n{done.stdout}"


def test_every_expected_output_belongs_to_one_example() -> None:
    """A README edit that renames a key example must move its expected output along."""
    for line_of_code in PRINTS_FIRST:
        example_with(line_of_code)


@pytest.mark.slow
def test_quick_start_run_again_is_served_from_cache(
    tmp_path: Path,
    service_env: ServiceEnv,  # noqa: F811
) -> None:
    quick_start = example_with("print(heavy_process(text))")
    first = run_example(quick_start, tmp_path, service_env(quick_start))
    assert first.returncode == 0, first.stderr
    assert [line for line in first.stdout.splitlines() if line.startswith("computing")] == [
        "computing A...",
        "computing B...",
        "computing C...",
    ]
    # The output the README shows under the quick start is the output it prints.
    blocks = _fenced_blocks(README.read_text(encoding="utf-8"))
    shown = blocks[blocks.index(("python", quick_start.code)) + 1]
    assert shown == ("text", first.stdout)
    second = run_example(quick_start, tmp_path, service_env(quick_start))
    assert second.returncode == 0, second.stderr
    # Nothing computed: the function's own print is absent, every result comes from the cache.
    assert second.stdout.splitlines() == [
        "Processed: A",
        "Processed: B",
        "Processed: C",
        "Processed: A",
    ]
    assert (tmp_path / "my_analysis.db").is_file()
    # As the README says: the blob folder appears only once a blob is saved.
    assert not (tmp_path / "my_analysis_blobs").exists()


@pytest.mark.slow
def test_marked_function_without_limiter_warns_and_paced_false_does_not(
    tmp_path: Path,
    service_env: ServiceEnv,  # noqa: F811
) -> None:
    example = example_with('print(forgot_the_limiter("a"), tokenize("a b"))')
    done = run_example(example, tmp_path, service_env(example))
    assert done.returncode == 0, done.stderr
    assert "BeautyspotWarning" in done.stderr and "limiter(cost=" in done.stderr, done.stderr
    assert "tokenize" not in done.stderr, done.stderr


def test_japanese_readme_has_the_same_code_and_sections() -> None:
    english = README.read_text(encoding="utf-8")
    japanese = README_JA.read_text(encoding="utf-8")
    english_code = [b for b in _fenced_blocks(english) if b[0] in ("python", "bash")]
    japanese_code = [b for b in _fenced_blocks(japanese) if b[0] in ("python", "bash")]
    assert japanese_code == english_code, "README.ja.md's code blocks differ from README.md's"
    assert _fenced_blocks(japanese) == _fenced_blocks(english), "the shown outputs differ"
    assert _heading_levels(japanese) == _heading_levels(english), "the sections differ"
    assert "(README.ja.md)" in english and "(README.md)" in japanese, "link the other language"


def test_changelog_newest_release_is_the_package_version() -> None:
    changelog = CHANGELOG.read_text(encoding="utf-8")
    versions = re.findall(r"^## \[([^\]]+)\]", changelog, re.M)
    assert versions and versions[0] == "Unreleased", "CHANGELOG.md starts with [Unreleased]"
    released = re.findall(r"^## \[(\d[^\]]*)\] - \d{4}-\d{2}-\d{2}$", changelog, re.M)
    assert released == versions[1:], "every release heading reads: ## [X.Y.Z] - YYYY-MM-DD"
    semver = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
    assert semver.fullmatch(bs.__version__), f"__version__ {bs.__version__!r} is not X.Y.Z"
    assert all(semver.fullmatch(version) for version in released), released
    assert released[0] == bs.__version__, "the newest release in CHANGELOG.md is __version__"
    numbers = [tuple(int(part) for part in version.split(".")) for version in released]
    assert numbers == sorted(numbers, reverse=True), "releases are listed newest first"
