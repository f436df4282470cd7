"""A griffe extension for the API reference: our reST-flavoured docstrings as Markdown.

beautyspot's docstrings are written for ``help()`` and doctest: ``>>>`` examples,
``:class:`~beautyspot.db.TaskDB``` roles, ``::`` before a literal block and definition lists
(a ````code```` line, its description indented below). Markdown would read ``>>>`` as nested
quotes, print the roles as they are and run a definition into its term, so before mkdocstrings
renders a docstring this turns each doctest into a ``pycon`` code block, each role into code
text, a closing ``::`` into ``:`` and each definition into the ``def_list`` syntax. ``:param:``
fields are left to mkdocstrings' Sphinx-style parser.

mkdocs.yml loads it by path (``extensions:`` of the python handler).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

__all__ = ["ReSTDocstrings", "markdown_of"]

# :class:`~beautyspot.db.TaskDB` -> `TaskDB`; :func:`beautyspot.batch.map` -> `beautyspot.batch.map`
_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`(~?)([^`]+)`")


def _role_as_code(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if short else target}`"


def _definitions(lines: list[str]) -> list[str]:
    """reST definitions (a term in ````code```` at the margin, maybe over several lines, its
    description indented below) as Markdown's ``Term`` / ``:   description``.

    >>> _definitions(["``get(key)``", "    The record,", "    or None.", "Next."])
    ['``get(key)``', ':   The record,', '    or None.', '', 'Next.']
    """
    out: list[str] = []
    i = 0
    while i < len(lines):
        end = i
        if lines[i].startswith("``"):
            while end < len(lines) - 1 and not lines[end].endswith("``"):
                end += 1
        body = end + 1
        is_term = lines[i].startswith("``") and lines[end].endswith("``")
        if not is_term or body >= len(lines) or not lines[body].startswith("    "):
            out.append(lines[i])
            i += 1
            continue
        out.append(" ".join(line.strip() for line in lines[i:body]))
        out.append(":   " + lines[body][4:])
        body += 1
        while body < len(lines) and lines[body].startswith("    "):
            out.append(lines[body])
            body += 1
        out.append("")
        i = body
    return out


def markdown_of(docstring: str) -> str:
    """``docstring`` with doctests fenced, roles as code, ``::`` as ``:`` and definitions
    in Markdown's syntax.

    >>> markdown_of("Use :class:`~a.b.Spot`::\\n\\n>>> 1 + 1\\n2\\n\\nDone.").splitlines()
    ['Use `Spot`:', '', '```pycon', '>>> 1 + 1', '2', '```', '', 'Done.']
    """
    lines: list[str] = []
    in_doctest = False
    for line in _definitions(_ROLE.sub(_role_as_code, docstring).splitlines()):
        stripped = line.lstrip()
        if not in_doctest and stripped.startswith(">>>"):
            indent = line[: len(line) - len(stripped)]
            lines.append(f"{indent}```pycon")
            in_doctest = True
        elif in_doctest and not stripped:
            lines.append(f"{indent}```")
            in_doctest = False
        if not in_doctest and line.endswith("::"):
            line = line[:-1]
        lines.append(line)
    if in_doctest:
        lines.append(f"{indent}```")
    return "\n".join(lines)


class ReSTDocstrings(griffe.Extension):
    """Rewrites every docstring of the loaded package with :func:`markdown_of`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_of(obj.docstring.value)
