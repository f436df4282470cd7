"""What a stored value looks like on the page: pure helpers, no web framework.

Everything here treats its input as hostile (cached LLM output is): text is escaped, Markdown is
rendered with raw HTML escaped and then rebuilt from an allowlist, links keep only web and mail
schemes, diagrams and images reach the page as ``<img>`` data URLs (an SVG shown as an image runs
no script and loads nothing), and HTML is only ever shown inside a sandboxed iframe.
"""

from __future__ import annotations

import base64
import datetime
import html
import json
import math
import os
import re
import reprlib
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any, NamedTuple

__all__ = [
    "TreeNode",
    "as_text",
    "graphviz_svg",
    "human_bytes",
    "human_seconds",
    "image_data_url",
    "json_tree",
    "markdown_html",
    "safe_href",
    "sandboxed_srcdoc",
    "sanitize_html",
    "sniff_image",
    "view_kind",
    "when",
]

#: Longest text rendered as Markdown, a diagram or HTML; the rest is cut (and said so).
MAX_RENDERED_CHARS = 1_000_000
#: Longest text shown as plain text.
MAX_TEXT_CHARS = 2_000_000
#: Nodes of a JSON tree; a larger value shows its first nodes and how many were left out.
MAX_TREE_NODES = 2000

# -- choosing a view ---------------------------------------------------------------------------

_JSON_TYPES = {"application/json", "text/json"}
_MARKDOWN_TYPES = {"text/markdown", "text/x-markdown"}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_GRAPHVIZ_TYPES = {"text/vnd.graphviz", "text/x-graphviz", "application/x-graphviz", "text/x-dot"}
_TEXT_KINDS = {"json", "markdown", "html", "mermaid", "graphviz", "text"}


def _mime(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def view_kind(content_type: str | None, value: Any) -> str:
    """How to show ``value``: by its ``content_type`` when the value fits it, else by its type.

    One of ``json``, ``markdown``, ``html``, ``mermaid``, ``graphviz``, ``text``, ``image``,
    ``bytes``, ``tree`` (a container shown as a collapsible tree) or ``repr``.

    >>> view_kind("text/markdown; charset=utf-8", "# Title")
    'markdown'
    >>> view_kind("image/png", b"\\x89PNG\\r\\n\\x1a\\n...")
    'image'
    >>> view_kind("image/png", "not bytes"), view_kind(None, {"a": 1}), view_kind(None, 3.5)
    ('text', 'tree', 'repr')
    """
    mime = _mime(content_type)
    wanted = None
    if mime in _JSON_TYPES or mime.endswith("+json"):
        wanted = "json"
    elif "mermaid" in mime:
        wanted = "mermaid"
    elif mime in _GRAPHVIZ_TYPES or "graphviz" in mime:
        wanted = "graphviz"
    elif mime in _MARKDOWN_TYPES:
        wanted = "markdown"
    elif mime in _HTML_TYPES:
        wanted = "html"
    elif mime.startswith("image/"):
        wanted = "image"
    elif mime.startswith("text/"):
        wanted = "text"
    if wanted == "json" and isinstance(value, (dict, list, tuple)):
        return "tree"
    if wanted == "image" and isinstance(value, (bytes, bytearray)) and sniff_image(value):
        return "image"
    if wanted in _TEXT_KINDS and as_text(value) is not None:
        return wanted
    return _kind_of_value(value)


def _kind_of_value(value: Any) -> str:
    if isinstance(value, str):
        return "text"
    if isinstance(value, (bytes, bytearray)):
        return "image" if sniff_image(value) else "bytes"
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        return "tree"
    return "repr"


def as_text(value: Any) -> str | None:
    """``value`` as text: a str, or bytes that are UTF-8; None for anything else.

    >>> as_text("é"), as_text("é".encode()), as_text(b"\\xff"), as_text(1)
    ('é', 'é', None, None)
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


# -- images ------------------------------------------------------------------------------------

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image(data: bytes | bytearray) -> str | None:
    """The image type the bytes themselves declare (PNG, JPEG, GIF, WebP), or None.

    The page trusts these bytes, never the record's ``content_type``.

    >>> sniff_image(b"\\xff\\xd8\\xff\\xe0..."), sniff_image(b"<svg onload=...>")
    ('image/jpeg', None)
    """
    head = bytes(data[:16])
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_data_url(data: bytes | bytearray, mime: str | None = None) -> str | None:
    """A ``data:`` URL of an image whose type is sniffed from its bytes (or given, for SVG we
    made ourselves); None when the bytes are no image we show.

    >>> image_data_url(b"GIF89a")
    'data:image/gif;base64,R0lGODlh'
    """
    mime = mime or sniff_image(data)
    if mime is None:
        return None
    return f"data:{mime};base64,{base64.b64encode(bytes(data)).decode('ascii')}"


# -- Markdown and HTML -------------------------------------------------------------------------

_SAFE_SCHEMES = {"http", "https", "mailto"}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
# What a browser's URL parser strips or ignores: leading/trailing C0 controls and spaces, and
# tabs and newlines anywhere ("java\tscript:" is "javascript:").
_URL_IGNORED = re.compile(r"[\x00-\x20\x7f]")


def safe_href(url: str) -> str | None:
    """``url`` if a browser would follow it as a web, mail or same-site link; else None.

    >>> safe_href("https://example.com/a?b=1"), safe_href("#notes"), safe_href("/stats")
    ('https://example.com/a?b=1', '#notes', '/stats')
    >>> safe_href("javascript:alert(1)"), safe_href(" JaVa\\tScRiPt:x"), safe_href("data:,x")
    (None, None, None)
    """
    cleaned = _URL_IGNORED.sub("", html.unescape(url))
    match = _SCHEME.match(cleaned)
    if match and match.group(1).lower() not in _SAFE_SCHEMES:
        return None
    if cleaned.startswith("\\") or (":" in cleaned.split("/", 1)[0] and not match):
        return None  # a browser reads "\\host" as "//host", and "1:x" is no path
    return cleaned


_ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "b", "em", "i", "del",
        "s", "code", "pre", "blockquote", "ul", "ol", "li", "dl", "dt", "dd", "table", "thead",
        "tbody", "tr", "th", "td", "a", "span", "div", "sup", "sub",
    }
)  # fmt: skip
_VOID_TAGS = frozenset({"br", "hr"})
# Dropped with everything inside them, not just their tags.
_DROPPED_WITH_CONTENT = frozenset(
    {
        "script", "style", "iframe", "frame", "frameset", "object", "embed", "template",
        "noscript", "textarea", "title", "svg", "math", "head", "select", "option",
    }
)  # fmt: skip
_CLASS_VALUE = re.compile(r"[A-Za-z0-9_\- ]{0,200}")
_ATTRIBUTE_CHECKS = {
    "class": lambda value: value if _CLASS_VALUE.fullmatch(value) else None,
    "align": lambda value: value if value in ("left", "right", "center") else None,
    "start": lambda value: value if value.isdigit() and len(value) < 9 else None,
    "href": safe_href,
    "title": lambda value: value[:500],
}
_ALLOWED_ATTRIBUTES = {
    "a": ("href", "title"),
    "span": ("class",),
    "div": ("class",),
    "code": ("class",),
    "pre": ("class",),
    "th": ("align",),
    "td": ("align",),
    "ol": ("start",),
}


class _Sanitizer(HTMLParser):
    """Rebuilds HTML from an allowlist of tags and attributes; every text is re-escaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.dropping = 0  # depth inside a dropped-with-content element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED_WITH_CONTENT:
            self.dropping += 1
            return
        if self.dropping:
            return
        if tag == "img":  # no remote loads: an image becomes its alt text
            alt = next((value for name, value in attrs if name == "alt" and value), "")
            if alt:
                self.out.append(html.escape(f"[{alt}]"))
            return
        if tag not in _ALLOWED_TAGS:
            return
        kept = []
        for name, value in attrs:
            if name in _ALLOWED_ATTRIBUTES.get(tag, ()) and value is not None:
                checked = _ATTRIBUTE_CHECKS[name](value)
                if checked is not None:
                    kept.append(f' {name}="{html.escape(checked, quote=True)}"')
        if tag == "a":
            kept.append(' rel="noopener noreferrer nofollow" target="_blank"')
        self.out.append(f"<{tag}{''.join(kept)}>")
        if tag not in _VOID_TAGS:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED_WITH_CONTENT:
            return  # <script/> holds nothing: nothing to drop, and no depth to open
        self.handle_starttag(tag, attrs)
        if tag in self.open and self.open[-1] == tag:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED_WITH_CONTENT:
            self.dropping = max(0, self.dropping - 1)
            return
        if self.dropping or tag not in self.open:
            return
        while self.open:  # close what was left open inside it, so the output stays balanced
            closed = self.open.pop()
            self.out.append(f"</{closed}>")
            if closed == tag:
                break

    def handle_data(self, data: str) -> None:
        if not self.dropping:
            self.out.append(html.escape(data, quote=False))

    def result(self) -> str:
        self.close()
        return "".join(self.out) + "".join(f"</{tag}>" for tag in reversed(self.open))


def sanitize_html(markup: str) -> str:
    """``markup`` rebuilt from an allowlist: formatting tags, ``class`` on code blocks, links
    with a safe ``href``; scripts, styles, event handlers, images and frames are gone.

    >>> sanitize_html('<p onclick="x()">Hi <script>evil()</script><a href="javascript:x">a</a></p>')
    '<p>Hi <a rel="noopener noreferrer nofollow" target="_blank">a</a></p>'
    >>> sanitize_html('<img src=x onerror=alert(1) alt="chart"> 1 &lt; 2')
    '[chart] 1 &lt; 2'
    """
    sanitizer = _Sanitizer()
    sanitizer.feed(markup)
    return sanitizer.result()


def markdown_html(text: str) -> str:
    """Markdown to HTML that is safe on the page: raw HTML in the source is shown as text,
    links keep only safe schemes, and the output passes :func:`sanitize_html`.

    >>> html = markdown_html('# Hi\\n\\n<b onclick="x()">raw</b> [go](javascript:alert(1))')
    >>> print(html.replace(" rel=", "\\n  rel="))
    <h1>Hi</h1>
    <BLANKLINE>
    <p>&lt;b onclick="x()"&gt;raw&lt;/b&gt; <a href="#"
      rel="noopener noreferrer nofollow" target="_blank">go</a></p>
    <BLANKLINE>
    """
    import markdown2  # installed with nicegui (beautyspot[dashboard])

    rendered = markdown2.markdown(
        text[:MAX_RENDERED_CHARS],
        safe_mode="escape",
        extras=["fenced-code-blocks", "tables", "strike", "cuddled-lists"],
    )
    return sanitize_html(str(rendered))


#: Put in front of every HTML result shown: even inside its sandbox, the document may load
#: nothing from the network (no tracking pixels, no exfiltration through image URLs).
_SRCDOC_POLICY = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "img-src data:; style-src 'unsafe-inline'; font-src data:; media-src data:; "
    "base-uri 'none'; form-action 'none'\">"
)


def sandboxed_srcdoc(markup: str) -> str:
    """The ``srcdoc`` of the iframe an HTML result is shown in: the result behind a content
    security policy that forbids every network load. The iframe itself is ``sandbox=""``
    (no scripts, no same-origin, no forms, no popups, no navigation of the page).

    >>> sandboxed_srcdoc("<p>x</p>").endswith("<p>x</p>")
    True
    """
    return _SRCDOC_POLICY + markup[:MAX_RENDERED_CHARS]


# -- Graphviz ----------------------------------------------------------------------------------


class GraphvizResult(NamedTuple):
    svg: bytes | None  # None when it could not be drawn: see ``error``
    error: str | None


def graphviz_svg(source: str, *, timeout: float = 10.0) -> GraphvizResult | None:
    """``source`` drawn as SVG by Graphviz's ``dot``; None when ``dot`` is not installed.

    ``dot`` runs in its safe mode (``SERVER_NAME`` set, no ``GV_FILE_PATH``), so a hostile
    graph cannot make it read local files into the picture, and in an empty working folder.
    The SVG is shown as an image, so links and scripts inside it do nothing.
    """
    dot = shutil.which("dot")
    if dot is None:
        return None
    env = {"PATH": os.environ.get("PATH", ""), "SERVER_NAME": "beautyspot-dashboard"}
    with tempfile.TemporaryDirectory(prefix="beautyspot-dot-") as folder:
        try:
            done = subprocess.run(
                [dot, "-Tsvg"],
                input=source[:MAX_RENDERED_CHARS].encode("utf-8", "replace"),
                capture_output=True,
                timeout=timeout,
                cwd=folder,
                env=env,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return GraphvizResult(None, f"dot failed: {error}")
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip()[:2000]
        return GraphvizResult(None, message or f"dot exited with status {done.returncode}")
    return GraphvizResult(done.stdout, None)


# -- JSON as a tree ----------------------------------------------------------------------------


#: One node of a collapsible tree: ``id``, ``label`` (shown as text) and ``children``.
TreeNode = dict[str, Any]


_scalar_repr = reprlib.Repr()
_scalar_repr.maxstring = 300
_scalar_repr.maxother = 300
_scalar_repr.maxlist = _scalar_repr.maxtuple = _scalar_repr.maxdict = 10


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
        return repr(value)
    if isinstance(value, str):
        shown = json.dumps(value[:500], ensure_ascii=False)
        return shown if len(value) <= 500 else shown[:-1] + f'…" ({len(value):,} chars)'
    try:
        return _scalar_repr.repr(value)
    except Exception:  # a user's __repr__ may raise: the type is still worth showing
        return f"<{type(value).__qualname__}>"


def _children(value: Any) -> list[tuple[str, Any]] | None:
    if isinstance(value, Mapping):
        return [(str(key), item) for key, item in value.items()]
    if isinstance(value, (list, tuple)):
        return [(f"[{index}]", item) for index, item in enumerate(value)]
    if isinstance(value, (set, frozenset)):
        return [("•", item) for item in value]
    return None


def json_tree(value: Any, *, max_nodes: int = MAX_TREE_NODES) -> tuple[list[TreeNode], int]:
    """``value`` (parsed JSON, or any dicts and lists) as tree nodes, and how many nodes were
    left out to stay under ``max_nodes``. Labels are plain text, shown escaped.

    >>> nodes, left_out = json_tree({"a": [1, "<b>"], "b": None})
    >>> [(n["label"], [c["label"] for c in n["children"]]) for n in nodes], left_out
    ([('a  [2 items]', ['[0]: 1', '[1]: "<b>"']), ('b: null', [])], 0)
    """
    counter = 0
    left_out = 0

    def build(name: str | None, item: Any, depth: int) -> TreeNode | None:
        nonlocal counter, left_out
        if counter >= max_nodes:
            left_out += 1
            return None
        counter += 1
        node: TreeNode = {"id": f"n{counter}", "children": []}
        items = _children(item) if depth < 64 else None
        if items is None:
            shown = _scalar(item)
            node["label"] = shown if name is None else f"{name}: {shown}"
            return node
        noun = "key" if isinstance(item, Mapping) else "item"
        summary = f"[{len(items)} {noun}{'' if len(items) == 1 else 's'}]"
        node["label"] = summary if name is None else f"{name}  {summary}"
        for key, child in items:
            built = build(key, child, depth + 1)
            if built is not None:
                node["children"].append(built)
        return node

    roots = _children(value)
    if roots is None:
        root = build(None, value, 0)
        return ([root] if root else []), left_out
    nodes = [node for key, item in roots if (node := build(key, item, 1)) is not None]
    return nodes, left_out


def parse_json_text(text: str) -> tuple[Any, str | None]:
    """``(value, None)`` for valid JSON text, ``(None, why)`` otherwise.

    >>> parse_json_text('{"a": 1}'), parse_json_text("{")[1] is not None
    (({'a': 1}, None), True)
    """
    try:
        return json.loads(text), None
    except ValueError as error:
        return None, f"not valid JSON ({error})"


# -- numbers and times -------------------------------------------------------------------------


def human_bytes(count: float | None) -> str:
    """``1536`` -> ``'1.5 KiB'``.

    >>> human_bytes(None), human_bytes(999), human_bytes(1536), human_bytes(3 * 2**30)
    ('-', '999 B', '1.5 KiB', '3.0 GiB')
    """
    if count is None:
        return "-"
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def human_seconds(seconds: float | None) -> str:
    """A duration for people.

    >>> human_seconds(None), human_seconds(0.0042), human_seconds(2.5), human_seconds(5400)
    ('-', '4.2 ms', '2.50 s', '1 h 30 min')
    >>> human_seconds(0), human_seconds(0.0000042)
    ('0 s', '4.2 µs')
    """
    if seconds is None:
        return "-"
    if seconds == 0:
        return "0 s"
    if seconds < 0.001:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:.0f} s"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min"


def when(timestamp: float | None) -> str:
    """Unix seconds as local ``YYYY-MM-DD HH:MM:SS``; ``-`` for none.

    >>> when(None)
    '-'
    """
    if timestamp is None:
        return "-"
    try:
        return datetime.datetime.fromtimestamp(float(timestamp)).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError, TypeError):
        return str(timestamp)
