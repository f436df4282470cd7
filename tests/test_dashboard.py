"""The web dashboard (beautyspot.dashboard).

First its pieces on their own (escaping, Markdown, decoding); then the real thing: a dashboard
process over a SQLite file filled through a real Spot, with results of every content type and
hostile ones among them, driven in headless Chromium by Playwright. Screenshots of each view go
to the test's tmp folder, and to ``$BEAUTYSPOT_DASHBOARD_SCREENSHOTS`` when set (the docs'
``docs/screenshots`` are taken that way).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.conftest import service_unavailable

import beautyspot as bs
from beautyspot.dashboard import exposure_warning, render, serve
from beautyspot.dashboard.data import Source, describe
from beautyspot.dashboard.pages import stats_charts
from beautyspot.db.base import RecordQuery, TaskRecord
from beautyspot.reading import CustomValue, Decoder

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# -- hostile results: none of these may run in the dashboard's page ---------------------------

PLAIN = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
MARKDOWN = (
    "# Weekly summary\n\nRevenue is **up** and costs are *down*.\n\n"
    '<img src=x onerror="window.__pwned=3">\n\n<script>window.__pwned=4</script>\n\n'
    "- [a harmless link](https://example.com/report)\n"
    "- [a trap](javascript:window.__pwned=5)\n"
)
HTML = (
    "<h1>Quarterly report</h1><p>Rendered inside its sandbox.</p>"
    "<script>window.__pwned = 6; try { parent.__pwned = 6 } catch (e) {}</script>"
    '<img src=x onerror="parent.__pwned = 7">'
)
MERMAID = (
    '%%{init: {"securityLevel": "loose", "flowchart": {"htmlLabels": true}}}%%\n'
    "graph TD\n"
    '  A["<img src=x onerror=window.__pwned=8>collect"] --> B[summarize]\n'
    "  B --> C[publish]\n"
    '  click C href "javascript:window.__pwned=9"\n'
)
GRAPHVIZ = 'digraph G { fetch -> parse -> store; fetch [URL="javascript:window.__pwned=10"]; }'
FAILURE = "<b>quota exceeded</b> <script>window.__pwned=11</script>"
PROMPT = '<img src=x onerror="window.__pwned=12">hello'  # shown as the input preview
TAMPERED = '<img src=x onerror="window.__pwned=13">'  # a function name written into the file
ROWS = 120  # records of `embed`, so the list has several pages


class Point:
    """A user type the dashboard is not taught about (it imports no module)."""

    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y


# The work functions: plain module-level functions, marked inside `fill` on a fresh Spot.


def reply(prompt: str) -> str:
    return PLAIN


def summarize(doc: str) -> str:
    return MARKDOWN


def extract(doc: str) -> dict[str, Any]:
    return {"title": PLAIN, "tags": ["a", "<b>b</b>"], "score": 0.93, "meta": {"pages": 3}}


def report(quarter: int) -> str:
    return HTML


def flowchart(name: str) -> str:
    return MERMAID


def callgraph(name: str) -> str:
    return GRAPHVIZ


def embed(i: int) -> list[float]:
    return [i / 10, i / 20]


def locate(name: str) -> Point:
    return Point(3, 4)


def moderate(text: str) -> str:
    raise ValueError(FAILURE)


def archive(n: int) -> bytes:
    return bytes(range(256)) * n


def fill(folder: Path, images: dict[str, bytes]) -> dict[str, str]:
    """A Spot's file full of records; returns the cache key of each content type's record."""
    spot = bs.Spot("dash", db=folder / "dash.db")
    spot.register_type(Point, 42, lambda p: f"{p.x},{p.y}".encode(), lambda b: Point(1, 2))
    marked = {
        "text": spot.mark(content_type="text/plain", version="v1")(reply),
        "markdown": spot.mark(content_type="text/markdown", version="v1")(summarize),
        "json": spot.mark(content_type="application/json", version="v2")(extract),
        "html": spot.mark(content_type="text/html")(report),
        "mermaid": spot.mark(content_type="text/vnd.mermaid")(flowchart),
        "graphviz": spot.mark(content_type="text/vnd.graphviz")(callgraph),
        "custom": spot.mark(locate),
        "blob": spot.mark(save_blob=True)(archive),
    }
    args = {"text": PROMPT, "markdown": "weekly.txt", "json": "invoice.pdf", "html": 3,
            "mermaid": "etl", "graphviz": "etl", "custom": "home", "blob": 4}  # fmt: skip

    def png(color: str) -> bytes:
        return images["png"]

    def jpeg(color: str) -> bytes:
        return images["jpeg"]

    marked["png"] = spot.mark(content_type="image/png")(png)
    marked["jpeg"] = spot.mark(content_type="image/jpeg")(jpeg)
    args["png"] = args["jpeg"] = "blue"
    embedder = spot.mark(version="v3")(embed)
    for i in range(ROWS):
        embedder(i)
    keys = {}
    for kind, function in marked.items():
        function(args[kind])
        function(args[kind])  # a hit
        keys[kind] = function.cache_key(args[kind])
    failing = spot.mark(moderate)
    with contextlib.suppress(ValueError):
        failing("some text")
    keys["victim"] = embedder.cache_key(0)
    keys["explained"] = embedder.cache_key(1)
    data = spot.serializer.dumps("tampered")
    spot.db.save_record(
        TaskRecord(
            "0" * 32, TAMPERED, "0" * 32, TAMPERED, "inline", f'text/html"{TAMPERED}',
            result_data=data, input_preview=TAMPERED, size=len(data),
        )
    )  # fmt: skip
    keys["tampered"] = "0" * 32
    spot.close()
    return keys


# -- the pieces --------------------------------------------------------------------------------


def test_markdown_keeps_no_raw_html_and_no_script_links():
    html = render.markdown_html(MARKDOWN)
    assert "<script" not in html and "<img" not in html
    assert "onerror" not in html.replace("onerror=&quot;", "").replace('onerror="window', "")
    assert "javascript:" not in html
    assert 'href="https://example.com/report"' in html
    assert "&lt;img" in html  # shown as text


def test_sanitizer_drops_what_could_run():
    hostile = (
        '<a href=" jav&#x09;ascript:alert(1)">x</a><svg onload=alert(1)><circle/></svg>'
        '<p style="x" onclick="y">ok</p><iframe src="https://example.com"></iframe>'
        '<a href="data:text/html,<script>">d</a><div class="codehilite">code</div>'
    )
    clean = render.sanitize_html(hostile)
    for banned in ("javascript", "alert", "svg", "onclick", "style", "iframe", "data:"):
        assert banned not in clean.lower()
    assert "<p>ok</p>" in clean and '<div class="codehilite">code</div>' in clean


def test_views_follow_content_type_only_when_the_value_fits():
    assert render.view_kind("text/html", HTML) == "html"
    assert render.view_kind("text/vnd.mermaid", MERMAID) == "mermaid"
    assert render.view_kind("text/vnd.graphviz", GRAPHVIZ) == "graphviz"
    assert render.view_kind("application/json", {"a": 1}) == "tree"
    assert render.view_kind("application/json", '{"a": 1}') == "json"
    assert render.view_kind("image/png", b"<svg onload=x>") == "bytes"  # bytes decide
    assert render.view_kind(None, CustomValue(1, 2)) == "repr"


def test_json_tree_is_capped():
    nodes, left_out = render.json_tree(list(range(5000)), max_nodes=100)
    assert len(nodes) == 100 and left_out == 4900


def test_unknown_user_types_decode_as_placeholders(tmp_path: Path):
    spot = bs.Spot("types", db=tmp_path / "types.db")
    spot.register_type(Point, 42, lambda p: b"1234567", lambda b: Point(0, 0))
    data = spot.serializer.dumps({"where": Point(1, 2)})
    assert repr(Decoder().loads(data)) == "{'where': custom type code 42, 7 bytes}"
    taught = Decoder()
    taught.adopt(spot.serializer)
    assert isinstance(taught.loads(data)["where"], Point)
    spot.close()


def test_imported_modules_teach_their_types(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dash_user_spot.py").write_text(
        "import beautyspot as bs\n"
        "class Money:\n"
        "    def __init__(self, cents): self.cents = cents\n"
        "spot = bs.Spot('user', db='user.db')\n"
        "spot.register_type(Money, 9, lambda m: m.cents, Money)\n"
    )
    (tmp_path / "dash_user_hook.py").write_text(
        "class Tag:\n"
        "    def __init__(self, name): self.name = name\n"
        "def beautyspot_register(serializer):\n"
        "    serializer.register(Tag, 10, lambda t: t.name, Tag)\n"
    )
    (tmp_path / "dash_user_empty.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import dash_user_hook
    import dash_user_spot

    writer = bs.Serializer()
    writer.register(dash_user_spot.Money, 9, lambda m: m.cents, dash_user_spot.Money)
    writer.register(dash_user_hook.Tag, 10, lambda t: t.name, dash_user_hook.Tag)
    data = writer.dumps([dash_user_spot.Money(250), dash_user_hook.Tag("vip")])
    money, tag = Decoder(["dash_user_spot", "dash_user_hook"]).loads(data)
    assert (money.cents, tag.name) == (250, "vip")
    with pytest.raises(bs.ConfigurationError, match="beautyspot_register"):
        Decoder(["dash_user_empty"])
    with pytest.raises(bs.ConfigurationError, match="importing it failed"):
        Decoder(["dash_user_missing"])
    dash_user_spot.spot.close()


def test_the_database_is_named_without_its_password():
    assert "s3cret" not in describe("postgresql://app:s3cret@db.internal/cache")
    assert "s3cret" not in describe("redis://:s3cret@cache:6379/0")


def test_a_minimal_backend_is_paged_in_memory(tmp_path: Path):
    class Minimal(bs.TaskDB):  # only the four required methods
        def __init__(self) -> None:
            self.rows = [
                {"cache_key": f"k{i}", "func_name": f"f{i % 2}", "created_at": float(i),
                 "input_preview": f"x={i}", "result_type": "inline", "result_data": b"\x01\x05"}
                for i in range(30)
            ]  # fmt: skip

        def get_history(self, limit: int = 1000) -> list[dict[str, Any]]:
            return sorted(self.rows, key=lambda r: -r["created_at"])[:limit]

    source = Source(Minimal(), None, Decoder().loads)
    answer = source.records(RecordQuery(func_name="f1", limit=5, offset=5))
    assert answer.total == 15 and answer.rows[0]["cache_key"] == "k19"
    assert "result_data" not in answer.rows[0] and "find_records" in (answer.note or "")
    assert source.stats().note and source.failures().note


def test_binding_another_address_warns():
    for local in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert exposure_warning(local, 8080, read_only=False) is None
    exposed = exposure_warning("0.0.0.0", 8080, read_only=False)
    assert exposed is not None and "0.0.0.0:8080" in exposed and "delete" in exposed
    assert "[::]:8080" in (exposure_warning("::", 8080, read_only=False) or "")
    read_only = exposure_warning("192.168.1.5", 9000, read_only=True)
    assert read_only is not None and "read" in read_only and "delete" not in read_only
    assert exposure_warning("example.com", 80, read_only=True) is not None


def test_serve_warns_before_it_binds_another_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import beautyspot.dashboard.pages as pages
    from beautyspot.db import SQLiteTaskDB

    served = []
    monkeypatch.setattr(pages, "run_app", lambda dashboard, **where: served.append(where))
    db = SQLiteTaskDB(tmp_path / "warn.db")
    with pytest.warns(bs.BeautyspotWarning, match="0.0.0.0:8123"):
        serve(db, host="0.0.0.0", port=8123, open_browser=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        serve(db, port=8123, open_browser=False)  # 127.0.0.1: no warning
    assert [where["host"] for where in served] == ["0.0.0.0", "127.0.0.1"]
    db.close()


def test_the_stats_chart_takes_names_as_data_only():
    rows = [
        {"func_name": TAMPERED, "hits": 3, "misses": 1, "time_saved": 1.5, "tokens_saved": 10.0},
        {"func_name": "x" * 200, "hits": 0, "misses": 2, "time_saved": 0.0, "tokens_saved": 0.0},
    ]
    for options in stats_charts(rows):
        assert options["yAxis"]["data"][-1] == TAMPERED  # the most called on top
        assert len(options["yAxis"]["data"][0]) <= 48
        assert options["tooltip"]["renderMode"] == "richText"  # not an HTML tooltip
        assert not any(key.startswith(":") or "formatter" in key for key in _keys(options))


def _keys(options: Any) -> Iterator[str]:
    """Every key of a nested option (NiceGUI runs the values of ``:key`` as JavaScript)."""
    if isinstance(options, dict):
        for key, value in options.items():
            yield key
            yield from _keys(value)
    elif isinstance(options, list):
        for value in options:
            yield from _keys(value)


# -- the dashboard in a browser ----------------------------------------------------------------

#: About 30 s in all, most of it starting Chromium and the dashboard processes.
in_browser = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_unavailable("playwright is not installed: pip install playwright")
    if not CHROMIUM.exists():
        service_unavailable(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    try:
        import nicegui  # noqa: F401
    except ImportError:
        service_unavailable('NiceGUI is not installed: pip install "beautyspot[dashboard]"')
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _images(browser: Any) -> dict[str, bytes]:
    """A PNG and a JPEG, encoded by the browser's own encoders."""
    page = browser.new_page()
    try:
        urls = page.evaluate(
            """() => {
                const canvas = document.createElement("canvas");
                canvas.width = 96; canvas.height = 64;
                const g = canvas.getContext("2d");
                g.fillStyle = "#3465a4"; g.fillRect(0, 0, 96, 64);
                g.fillStyle = "#f5c211"; g.fillRect(16, 16, 32, 32);
                return [canvas.toDataURL("image/png"), canvas.toDataURL("image/jpeg", 0.8)];
            }"""
        )
    finally:
        page.close()
    png, jpeg = (base64.b64decode(url.split(",", 1)[1]) for url in urls)
    return {"png": png, "jpeg": jpeg}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _dashboard(db: Path, *options: str) -> Iterator[str]:
    """A dashboard process serving ``db``; yields its base URL."""
    port = _free_port()
    code = (
        "import sys; from beautyspot.dashboard import serve; "
        "serve(sys.argv[1], port=int(sys.argv[2]), open_browser=False, "
        "read_only='--read-only' in sys.argv)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    log = db.parent / f"dashboard-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(db), str(port), *options],
            cwd=db.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the dashboard did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def site(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("dashboard")
    keys = fill(folder, _images(browser))
    with _dashboard(folder / "dash.db") as url:
        yield {"url": url, "keys": keys, "folder": folder}


@pytest.fixture
def page(browser: Any, site: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()


def _shot(page: Any, name: str, folder: Path, *, docs: bool = False) -> None:
    """A screenshot of the whole page, taken in a window as tall as the page (a full-page
    shot of a taller page would leave the fixed header mid-way and frames blank). The docs'
    ones (one per view) also go to ``$BEAUTYSPOT_DASHBOARD_SCREENSHOTS`` when it is set."""
    size = page.viewport_size
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(height, 600), 4000)})
    page.wait_for_timeout(300)
    folders = [folder]
    if docs and os.environ.get("BEAUTYSPOT_DASHBOARD_SCREENSHOTS"):
        folders.append(Path(os.environ["BEAUTYSPOT_DASHBOARD_SCREENSHOTS"]))
    for where in folders:
        where.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(where / f"{name}.png"))
    page.set_viewport_size(size)


def _not_pwned(page: Any) -> None:
    page.wait_for_timeout(300)  # let any image error handler or timer fire
    assert page.evaluate("window.__pwned") is None


def _rows(page: Any) -> list[str]:
    return page.locator('[data-testid="records"] tbody tr').all_inner_texts()


def _field(page: Any, name: str) -> Any:
    """The text box of an input or select (Quasar puts the test id on it or around it)."""
    return page.locator(f'input[data-testid="{name}"], [data-testid="{name}"] input').first


def _wait_total(page: Any, pattern: str) -> None:
    page.locator('[data-testid="total"]').filter(has_text=re.compile(pattern)).wait_for()


@in_browser
def test_the_list_pages_filters_and_sorts(page: Any, site: dict[str, Any]):
    page.goto(site["url"])
    total = ROWS + 11
    _wait_total(page, rf"^{total} records$")
    first_page = _rows(page)
    assert len(first_page) == 50
    assert any(TAMPERED in row and PROMPT not in row for row in first_page)  # shown as text
    assert any(PROMPT in row for row in first_page)
    _shot(page, "records", site["folder"], docs=True)
    _field(page, "filter-function").click()  # the choices: function names, tampered one too
    page.locator(".q-menu .q-item").filter(has_text=TAMPERED).wait_for()
    page.keyboard.press("Escape")
    page.locator(".q-menu").wait_for(state="hidden")
    _not_pwned(page)

    page.get_by_role("button", name="Next page").click()
    page.wait_for_function("() => location.search.includes('page=2')")
    assert _rows(page) != first_page and len(_rows(page)) == 50

    text = _field(page, "filter-text")
    text.fill("home")
    _wait_total(page, r"^1 record$")
    assert "locate" in _rows(page)[0]
    text.fill("")
    _wait_total(page, rf"^{total} records$")

    function = _field(page, "filter-function")
    function.fill(_func_name("embed"))
    function.press("Enter")
    _wait_total(page, rf"^{ROWS} records$")
    page.goto(site["url"] + "/?version=v1")
    _wait_total(page, r"^2 records$")
    page.goto(site["url"] + "/?ctype=image/png")
    _wait_total(page, r"^1 record$")

    page.goto(site["url"])
    _wait_total(page, rf"^{total} records$")
    page.locator('[data-testid="records"] th').filter(has_text="function").click()
    page.wait_for_function("() => location.search.includes('sort=func_name')")
    names = [row.split("\t")[1] for row in _rows(page)]
    assert names == sorted(names) and names[0] == TAMPERED and names[1].endswith("archive")


def _func_name(short: str) -> str:
    return f"tests.test_dashboard.{short}"


VIEWS = {
    "text": '[data-testid="text"]',
    "markdown": '[data-testid="markdown"] h1',
    "json": '[data-testid="tree"]',
    "html": '[data-testid="html-frame"]',
    "mermaid": '[data-testid="mermaid"] svg',
    "graphviz": '[data-testid="image"], [data-testid="graphviz-source"]',
    "png": '[data-testid="image"]',
    "jpeg": '[data-testid="image"]',
    "custom": '[data-testid="custom"]',
    "blob": '[data-testid="bytes"]',
    "tampered": '[data-testid="text"]',
}


@in_browser
@pytest.mark.parametrize("kind", list(VIEWS))
def test_a_record_renders_by_content_type_and_runs_nothing(page: Any, site: dict[str, Any], kind):
    page.goto(f"{site['url']}/record?key={site['keys'][kind]}")
    shown = page.locator(VIEWS[kind]).first
    shown.wait_for()
    _not_pwned(page)
    if kind == "text":
        assert shown.inner_text() == PLAIN  # shown as text, not as markup
    elif kind == "markdown":
        body = page.locator('[data-testid="markdown"]')
        assert body.locator("script, img").count() == 0
        assert '<img src=x onerror="window.__pwned=3">' in body.inner_text()
        hrefs = body.locator("a").evaluate_all("links => links.map(a => a.href)")
        assert "https://example.com/report" in hrefs
        assert not any(href.lower().startswith("javascript") for href in hrefs)
    elif kind == "json":
        shown_text = shown.inner_text()
        assert "score: 0.93" in shown_text and f"title: {json.dumps(PLAIN)}" in shown_text
    elif kind == "html":
        assert shown.get_attribute("sandbox") == ""
        assert "<script>" in shown.get_attribute("srcdoc")
        frame = shown.element_handle().content_frame()
        frame.wait_for_selector("h1")
        assert frame.evaluate("window.__pwned") is None  # no scripts inside either
    elif kind == "mermaid":
        svg = page.locator('[data-testid="mermaid"]')
        assert "summarize" in svg.inner_text()
        assert svg.locator("img, script, [onerror], [onclick]").count() == 0
        hrefs = svg.locator("a").evaluate_all(
            "links => links.map(a => a.getAttribute('href') || a.getAttribute('xlink:href'))"
        )
        assert not any("javascript" in (href or "").lower() for href in hrefs)
    elif kind in ("png", "jpeg"):
        assert shown.get_attribute("src").startswith(f"data:image/{kind};base64,")
        assert page.evaluate(
            "() => document.querySelector('[data-testid=image]').naturalWidth"
        ) == 96  # fmt: skip
    elif kind == "graphviz":
        if shown.get_attribute("data-testid") == "image":
            assert shown.get_attribute("src").startswith("data:image/svg+xml;base64,")
        else:
            assert "digraph" in shown.inner_text()
    elif kind == "custom":
        assert shown.inner_text() == "custom type code 42, 3 bytes"
    elif kind == "tampered":
        assert page.locator('[data-testid="title"]').inner_text() == TAMPERED
        assert shown.inner_text() == "tampered"
    elif kind == "blob":
        assert "1,024 bytes" in page.locator('[data-testid="value"]').inner_text()
    _shot(page, "record" if kind == "markdown" else f"record-{kind}", site["folder"],
          docs=kind == "markdown")  # fmt: skip


@in_browser
def test_stats_show_counts_per_function(page: Any, site: dict[str, Any]):
    page.goto(site["url"] + "/stats")
    table = page.locator('[data-testid="stats"]')
    row = table.locator("tbody tr").filter(has_text=_func_name("embed"))
    row.wait_for()
    assert str(ROWS) in row.inner_text().split("\t")
    assert "records" in page.locator('[data-testid="totals"]').inner_text()
    charts = page.locator('[data-testid="stats-charts"] svg')
    charts.first.wait_for()
    assert charts.count() >= 2  # calls, and what the hits saved
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stats-charts] svg').textContent"
        ".includes('hits')"
    )
    drawn = charts.first.evaluate("svg => svg.textContent")
    assert "misses" in drawn and _func_name("embed") in drawn
    assert TAMPERED in drawn  # a hostile function name, drawn as SVG text
    assert (
        page.locator(
            '[data-testid="stats-charts"] img, [data-testid="stats-charts"] script'
        ).count()
        == 0
    )
    _shot(page, "stats", site["folder"], docs=True)
    _not_pwned(page)


@in_browser
def test_failures_show_the_error_and_its_traceback(page: Any, site: dict[str, Any]):
    page.goto(site["url"] + "/failures")
    failure = page.locator('[data-testid="failure"]').first
    failure.wait_for()
    assert "ValueError" in failure.inner_text()
    failure.locator(".q-item").first.click()
    traceback = page.locator('[data-testid="traceback"]').first
    traceback.wait_for()
    assert "Traceback (most recent call last)" in traceback.inner_text()
    assert FAILURE in page.locator('[data-testid="failure-message"]').first.inner_text()
    _shot(page, "failures", site["folder"], docs=True)
    _not_pwned(page)

    page.goto(site["url"] + "/?status=failed")
    _wait_total(page, r"^1 failure$")
    page.locator('[data-testid="records"] tbody tr').first.click()
    page.locator('[data-testid="traceback"]').wait_for()
    _not_pwned(page)


@in_browser
def test_the_record_view_explains_the_record_escaped(page: Any, site: dict[str, Any]):
    page.goto(f"{site['url']}/record?key={site['keys']['explained']}")
    explained = page.locator('[data-testid="explain"]')
    explained.wait_for()
    text = explained.inner_text()
    assert "i            1 (int)" in text  # its argument, from the record's digests
    assert re.search(r"argument i: other \d+ \(int\), this 1 \(int\)", text)  # a neighbour
    # A function name and version written into the file are shown as text, never as markup.
    page.goto(f"{site['url']}/record?key={site['keys']['tampered']}")
    explained.wait_for()
    assert f"function   {TAMPERED}" in explained.inner_text()
    assert explained.locator("img, script").count() == 0
    _not_pwned(page)


@in_browser
def test_a_record_can_be_deleted_unless_read_only(page: Any, site: dict[str, Any]):
    key = site["keys"]["victim"]
    with _dashboard(site["folder"] / "dash.db", "--read-only") as read_only_url:
        page.goto(f"{read_only_url}/record?key={key}")
        page.locator('[data-testid="read-only"]').wait_for()
        page.locator('[data-testid="metadata"]').wait_for()
        assert page.locator('[data-testid="delete"]').count() == 0
    page.goto(f"{site['url']}/record?key={key}")
    page.locator('[data-testid="delete"]').click()
    page.locator('[data-testid="confirm-delete"]').click()
    page.wait_for_url(re.compile(r"/$|/\?"))
    page.goto(f"{site['url']}/record?key={key}")
    page.locator('[data-testid="missing"]').wait_for()


@in_browser
def test_the_pages_load_nothing_from_elsewhere(page: Any, site: dict[str, Any]):
    """No CDN, font service or tracker: every request goes back to the dashboard."""
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("websocket", lambda socket: requested.append(socket.url))
    visits = {
        "/": '[data-testid="records"] tbody tr',
        f"/record?key={site['keys']['mermaid']}": VIEWS["mermaid"],
        f"/record?key={site['keys']['png']}": VIEWS["png"],
        f"/record?key={site['keys']['markdown']}": VIEWS["markdown"],
        "/stats": '[data-testid="stats-charts"] svg',
        "/failures": '[data-testid="failure"]',
    }
    for path, shown in visits.items():
        page.goto(site["url"] + path)
        page.locator(shown).first.wait_for()
        page.wait_for_load_state("networkidle")
    assert any(url.startswith(site["url"]) for url in requested)
    elsewhere = [
        url
        for url in requested
        if urlsplit(url).scheme not in ("data", "blob", "about")
        and urlsplit(url).hostname not in ("127.0.0.1", "localhost")
    ]
    assert elsewhere == []


# -- the same views on every kind of store (no browser: the pages only format these) ---------


def _store_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return str(tmp_path / "views.db")
    url = os.environ.get(
        "BEAUTYSPOT_TEST_REDIS_URL" if kind == "redis" else "BEAUTYSPOT_TEST_POSTGRES_URL",
        "redis://127.0.0.1:6379/15" if kind == "redis" else "postgresql://postgres@127.0.0.1/test",
    )
    try:
        from beautyspot.db import taskdb_from

        probe = taskdb_from(url, "probe")
        try:
            probe.lookup("probe")
        finally:
            probe.close()
    except bs.StorageError as exc:
        service_unavailable(f"{kind} not reachable for the dashboard's views ({exc})")
    return url


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgresql"])
def test_the_views_work_on_every_store(tmp_path: Path, kind: str) -> None:
    from beautyspot.dashboard.data import Source
    from beautyspot.db.base import RecordQuery
    from beautyspot.reading import Decoder

    name = f"views-{uuid.uuid4().hex[:8]}"  # a fresh namespace (Redis) and function version
    spot = bs.Spot(name, db=_store_url(kind, tmp_path), storage=tmp_path / "blobs")
    version = uuid.uuid4().hex

    @spot.mark(version=version, content_type="application/json")
    def answer(n: int) -> dict[str, Any]:
        return {"n": n, "html": "<script>window.__pwned=1</script>"}

    @spot.mark(version=version)
    def broken(n: int) -> int:
        raise ValueError(f"bad {n}")

    for n in range(3):
        answer(n)
        answer(n)  # a hit, counted
    with pytest.raises(ValueError):
        broken(1)
    spot.close()  # flushes the counts
    source = Source(spot.db, spot.storage, Decoder().loads)
    page = source.records(RecordQuery(version=version, limit=2))
    assert page.total == 3 and len(page.rows) == 2
    record = source.record(page.rows[0]["cache_key"])
    assert record is not None
    shown = source.value_of(record)
    assert shown.error is None and shown.value["html"] == "<script>window.__pwned=1</script>"
    stats = {row["func_name"]: row for row in source.stats().rows}
    mine = next(row for func, row in stats.items() if func.endswith("answer") and row["hits"])
    assert mine["hits"] >= 3 and mine["misses"] >= 3
    assert any("bad 1" in str(row) for row in source.failures(limit=50).rows)
