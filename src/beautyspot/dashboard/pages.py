"""The dashboard's pages, on NiceGUI: records (paged, sorted and filtered on the server), one
record with its value rendered by content type, stats per function, and failures.

Everything shown comes from the database and is untrusted. It reaches the browser only as text
(labels, table cells, tree labels, all escaped by Vue), as an ``<img>`` data URL, as Markdown
rebuilt from an allowlist (:func:`~beautyspot.dashboard.render.markdown_html`), as a Mermaid
diagram drawn with ``securityLevel: "strict"``, or inside an iframe with ``sandbox=""``.
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import quote, urlencode

from nicegui import run, ui

from beautyspot.dashboard import render
from beautyspot.dashboard.data import Answer, Decoded, Source
from beautyspot.db.base import RECORD_ORDERS, RecordQuery
from beautyspot.reading import CustomValue

__all__ = ["Dashboard"]

PAGE_SIZES = (25, 50, 100)
FAILURES_PER_PAGE = 20
#: Offered in the content type filter; any other can be typed in.
COMMON_CONTENT_TYPES = (
    "application/json",
    "text/plain",
    "text/markdown",
    "text/html",
    "image/png",
    "image/jpeg",
    "text/vnd.mermaid",
    "text/vnd.graphviz",
)
#: Mermaid never runs the diagram's scripts or click handlers, and labels are plain SVG text.
MERMAID_CONFIG = {
    "securityLevel": "strict",
    "startOnLoad": False,
    "htmlLabels": False,
    "flowchart": {"htmlLabels": False},
}
#: Characters of a cell in a list: the record view shows the rest.
CELL_CHARS = 160

_left = {"align": "left"}
_nowrap = {"classes": "whitespace-nowrap"}
RECORD_COLUMNS = [
    {
        "name": "created_at",
        "label": "created",
        "field": "created",
        "sortable": True,
        **_left,
        **_nowrap,
    },
    {"name": "func_name", "label": "function", "field": "func_name", "sortable": True, **_left},
    {"name": "version", "label": "version", "field": "version", "sortable": True, **_left},
    {"name": "content_type", "label": "content type", "field": "content_type", **_left},
    {"name": "size", "label": "size", "field": "size", "sortable": True, **_nowrap},
    {"name": "duration", "label": "duration", "field": "duration", "sortable": True, **_nowrap},
    {"name": "hits", "label": "hits", "field": "hits", "sortable": True},
    {"name": "input_preview", "label": "input", "field": "input_preview", **_left},
]
FAILURE_COLUMNS = [
    {"name": "created_at", "label": "failed at", "field": "created", **_left, **_nowrap},
    {"name": "func_name", "label": "function", "field": "func_name", **_left},
    {"name": "error", "label": "error", "field": "error", **_left},
    {"name": "input_preview", "label": "input", "field": "input_preview", **_left},
]
STATS_COLUMNS = [
    {"name": "func_name", "label": "function", "field": "func_name", "sortable": True, **_left},
    {"name": "records", "label": "records", "field": "records", "sortable": True},
    {"name": "hits", "label": "hits", "field": "hits", "sortable": True},
    {"name": "misses", "label": "misses", "field": "misses", "sortable": True},
    {"name": "failures", "label": "failures", "field": "failures", "sortable": True},
    {"name": "hit_rate", "label": "hit rate", "field": "hit_rate", "sortable": True},
    {"name": "time_saved", "label": "time saved", "field": "time_saved", "sortable": True},
    {"name": "tokens_saved", "label": "tokens saved", "field": "tokens_saved", "sortable": True},
    {"name": "bytes_inline", "label": "inline", "field": "bytes_inline", "sortable": True},
    {"name": "bytes_blob", "label": "blobs", "field": "bytes_blob", "sortable": True},
]

# A cell that links somewhere: the href is built on the server from a fixed path and a
# percent-encoded value, and the text is interpolated by Vue (escaped).
_LINK_CELL = """
<q-td :props="props">
  <a :href="props.row.href" class="text-primary hover:underline">{{ props.value }}</a>
</q-td>
"""
# A numeric cell (sorted by its number) shown as the row's preformatted text of it.
_SHOWN_CELL = """
<q-td :props="props">{{ props.row.shown[props.col.name] }}</q-td>
"""

_CSS = """
.bs-pre { white-space: pre-wrap; word-break: break-word; font-family: ui-monospace, monospace;
          font-size: 0.8rem; }
.bs-frame { width: 100%; height: 520px; border: 1px solid #ccc; background: white; }
.bs-img { max-width: 100%; width: auto; height: auto; align-self: flex-start;
          background: white; border: 1px solid #eee; }
"""

_value_repr = reprlib.Repr()
_value_repr.maxstring = 10_000
_value_repr.maxother = 10_000
_value_repr.maxlist = _value_repr.maxtuple = _value_repr.maxdict = _value_repr.maxset = 200
_value_repr.maxlevel = 8


@dataclass
class ListState:
    """The records list's filters, order and page: also its URL's query."""

    func: str = ""
    version: str = ""
    ctype: str = ""
    text: str = ""
    status: str = "ok"
    sort: str = "created_at"
    desc: int = 1
    page: int = 1
    rows: int = 50

    def checked(self) -> ListState:
        if self.sort not in RECORD_ORDERS:
            self.sort = "created_at"
        if self.status not in ("ok", "failed"):
            self.status = "ok"
        self.rows = self.rows if self.rows in PAGE_SIZES else 50
        self.page = max(1, self.page)
        self.desc = 1 if self.desc else 0
        return self

    def query(self) -> RecordQuery:
        return RecordQuery(
            func_name=self.func or None,
            version=self.version or None,
            content_type=self.ctype or None,
            text=self.text or None,
            order_by=self.sort,
            descending=bool(self.desc),
            offset=(self.page - 1) * self.rows,
            limit=self.rows,
        )

    def url(self) -> str:
        default = ListState()
        changed = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }
        return "/" + (f"?{urlencode(changed)}" if changed else "")


def _href(path: str, **query: str) -> str:
    """A same-site link: a fixed path and percent-encoded query values (never a scheme)."""
    return path + "?" + "&".join(f"{name}={quote(value, safe='')}" for name, value in query.items())


def _cut(text: Any, limit: int = CELL_CHARS) -> str:
    if text is None:
        return "-"
    shown = str(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


async def _connected() -> bool:
    """Wait for the browser's connection: the page is served at once, and data that takes a
    while to read (a text search over millions of records) arrives when it is ready. False
    when no browser connects (a plain HTTP fetch of the page): nothing more to build."""
    try:
        await ui.context.client.connected(timeout=30)
    except TimeoutError:
        return False
    return True


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _test_id(element: ui.element, name: str) -> ui.element:
    element.props["data-testid"] = name
    return element


def _record_row(row: Mapping[str, Any]) -> dict[str, Any]:
    key = str(row.get("cache_key"))
    return {
        "key": key,
        "href": _href("/record", key=key),
        "created": render.when(row.get("created_at")),
        "func_name": _cut(row.get("func_name")),
        "version": _cut(row.get("version")),
        "content_type": _cut(row.get("content_type")),
        "size": render.human_bytes(_first(row.get("size"), row.get("result_size"))),
        "duration": render.human_seconds(row.get("duration")),
        "hits": row.get("hits") if row.get("hits") is not None else "-",
        "input_preview": _cut(row.get("input_preview")),
    }


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _failure_row(index: int, row: Mapping[str, Any]) -> dict[str, Any]:
    first_line = str(row.get("message") or "").strip().splitlines()[:1]
    return {
        "key": str(index),
        "href": _href("/failures", func=str(row.get("func_name") or "")),
        "created": render.when(row.get("created_at")),
        "func_name": _cut(row.get("func_name")),
        "error": _cut(f"{row.get('error_type')}: {first_line[0] if first_line else ''}"),
        "input_preview": _cut(row.get("input_preview")),
    }


class Dashboard:
    """The pages over one :class:`~beautyspot.dashboard.data.Source`.

    :param shown_as: how the header names the database (a URL without its password).
    :param read_only: hide every action that changes the database (and refuse them).
    """

    def __init__(self, source: Source, *, shown_as: str, read_only: bool) -> None:
        self.source = source
        self.shown_as = shown_as
        self.read_only = read_only

    def add_pages(self) -> None:
        """Register the routes ``/``, ``/record``, ``/stats`` and ``/failures``."""

        @ui.page("/", title="beautyspot · records")
        async def records(
            func: str = "", version: str = "", ctype: str = "", text: str = "",
            status: str = "ok", sort: str = "created_at", desc: int = 1, page: int = 1,
            rows: int = 50,
        ) -> None:  # fmt: skip
            state = ListState(func, version, ctype, text, status, sort, desc, page, rows)
            await self.records_page(state.checked())

        @ui.page("/record", title="beautyspot · record")
        async def record(key: str = "") -> None:
            await self.record_page(key)

        @ui.page("/stats", title="beautyspot · stats")
        async def stats() -> None:
            await self.stats_page()

        @ui.page("/failures", title="beautyspot · failures")
        async def failures(func: str = "", text: str = "", page: int = 1) -> None:
            await self.failures_page(func, text, max(1, page))

    # -- the frame around every page ---------------------------------------------------------

    def frame(self, active: str) -> None:
        ui.add_css(_CSS)
        with ui.header().classes("items-center gap-6 px-6 py-2 bg-slate-800"):
            ui.label("beautyspot").classes("text-lg font-bold")
            for name, target in (("Records", "/"), ("Stats", "/stats"), ("Failures", "/failures")):
                link = ui.link(name, target).classes("text-white no-underline")
                if name.lower() == active:
                    link.classes("font-bold underline")
            ui.space()
            _test_id(ui.label(self.shown_as).classes("text-xs opacity-80"), "database")
            if self.read_only:
                _test_id(ui.badge("read-only", color="orange"), "read-only")

    @staticmethod
    def show_note(answer: Answer | None) -> None:
        if answer is not None and answer.note:
            _test_id(ui.label(answer.note).classes("text-sm text-orange-800"), "note")

    # -- records -----------------------------------------------------------------------------

    async def records_page(self, state: ListState) -> None:
        self.frame("records")
        with ui.row().classes("items-end gap-4 w-full px-2"):
            status = _test_id(
                ui.toggle({"ok": "cached", "failed": "failed"}, value=state.status), "status"
            )
            func = ui.select(
                [state.func] if state.func else [], label="function", with_input=True,
                clearable=True, new_value_mode="add-unique", value=state.func or None,
            ).classes("min-w-[18rem]")  # fmt: skip
            _test_id(func, "filter-function")
            version = _test_id(
                ui.input("version", value=state.version).props("clearable debounce=400"),
                "filter-version",
            )
            ctypes = sorted({*COMMON_CONTENT_TYPES, *([state.ctype] if state.ctype else [])})
            ctype = ui.select(
                ctypes, label="content type", with_input=True, clearable=True,
                new_value_mode="add-unique", value=state.ctype or None,
            ).classes("min-w-[14rem]")  # fmt: skip
            _test_id(ctype, "filter-content-type")
            text = _test_id(
                ui.input("input contains", value=state.text).props("clearable debounce=400"),
                "filter-text",
            ).classes("min-w-[16rem]")
            ui.space()
            total = _test_id(ui.label().classes("text-sm text-gray-600"), "total")
        note = _test_id(ui.label().classes("text-sm text-orange-800 px-2"), "note")
        table = ui.table(
            rows=[], columns=RECORD_COLUMNS, row_key="key",
            pagination={"page": state.page, "rowsPerPage": state.rows, "sortBy": state.sort,
                        "descending": bool(state.desc), "rowsNumber": 0},
        ).classes("w-full").props("flat bordered dense wrap-cells")  # fmt: skip
        _test_id(table, "records")
        table.props["rows-per-page-options"] = list(PAGE_SIZES)
        table.add_slot("body-cell-func_name", _LINK_CELL)
        failures_shown: dict[str, Mapping[str, Any]] = {}
        shown = {"total": 0}

        def pagination() -> dict[str, Any]:
            return {
                "page": state.page, "rowsPerPage": state.rows, "sortBy": state.sort,
                "descending": bool(state.desc), "rowsNumber": shown["total"],
            }  # fmt: skip

        def keep_pagination(event: Any) -> None:
            # The server pages, so it owns the pagination: QTable echoes the one it was
            # created with when it mounts, which may arrive after the first page's.
            if event.value != pagination():
                table.pagination = pagination()

        async def load() -> None:
            table.props["loading"] = True
            failed = state.status == "failed"
            try:
                if failed:
                    offset = (state.page - 1) * state.rows
                    answer = await run.io_bound(
                        self.source.failures, state.func or None, state.text or None, offset,
                        state.rows,
                    )  # fmt: skip
                else:
                    answer = await run.io_bound(self.source.records, state.query())
            except Exception as error:  # the backend's own message: shown as text
                table.props["loading"] = False
                note.text = f"cannot read the records: {type(error).__name__}: {error}"
                return
            if answer is None:  # the client went away
                return
            if failed:
                failures_shown.clear()
                rows = []
                for index, row in enumerate(answer.rows):
                    failures_shown[str(index)] = row
                    rows.append(_failure_row(index, row))
            else:
                rows = [_record_row(row) for row in answer.rows]
            table.columns = FAILURE_COLUMNS if failed else RECORD_COLUMNS
            table.rows = rows
            shown["total"] = answer.total
            table.pagination = pagination()
            table.props["loading"] = False
            total.text = _count(answer.total, "failure" if failed else "record")
            note.text = answer.note or ""
            version.set_enabled(not failed)
            ctype.set_enabled(not failed)
            ui.navigate.history.replace(state.url())

        async def changed(name: str, value: Any) -> None:
            setattr(state, name, value or ("ok" if name == "status" else ""))
            state.page = 1
            await load()

        async def requested(event: Any) -> None:
            pagination = event.args.get("pagination", {})
            sort_by = pagination.get("sortBy")
            state.sort = sort_by if sort_by in RECORD_ORDERS else "created_at"
            state.desc = 1 if (pagination.get("descending") or not sort_by) else 0
            state.rows = int(pagination.get("rowsPerPage") or state.rows)
            state.page = int(pagination.get("page") or 1)
            await load()

        def clicked(event: Any) -> None:
            key = str(event.args)
            if state.status == "failed":
                if key in failures_shown:
                    self.failure_dialog(failures_shown[key])
            else:
                ui.navigate.to(_href("/record", key=key))

        status.on_value_change(lambda e: changed("status", e.value))
        func.on_value_change(lambda e: changed("func", e.value))
        version.on_value_change(lambda e: changed("version", e.value))
        ctype.on_value_change(lambda e: changed("ctype", e.value))
        text.on_value_change(lambda e: changed("text", e.value))
        table.on("request", requested)
        table.on_pagination_change(keep_pagination)
        table.on("row-click", clicked, js_handler="(event, row) => emit(row.key)")
        table.props["loading"] = True
        if not await _connected():
            return
        await load()

        async def offer_function_names() -> None:
            names = await run.io_bound(self.source.function_names)
            if names is not None:
                current = state.func or None
                func.set_options(sorted({*names, *([current] if current else [])}), value=current)

        ui.timer(0.05, offer_function_names, once=True)

    def failure_dialog(self, row: Mapping[str, Any]) -> None:
        with ui.dialog() as dialog, ui.card().classes("w-[60rem] max-w-full"):
            self.failure_body(row)
            ui.button("Close", on_click=dialog.close).props("flat")
        dialog.open()

    @staticmethod
    def failure_body(row: Mapping[str, Any]) -> None:
        _pairs(
            (
                ("function", row.get("func_name")),
                ("failed at", render.when(row.get("created_at"))),
                ("error", row.get("error_type")),
                ("cache key", row.get("cache_key")),
                ("input", row.get("input_preview")),
            )
        )
        ui.label("message").classes("text-sm text-gray-500 mt-2")
        _test_id(ui.label(str(row.get("message") or "")).classes("bs-pre"), "failure-message")
        ui.label("traceback").classes("text-sm text-gray-500 mt-2")
        _test_id(
            ui.label(str(row.get("traceback") or "")).classes("bs-pre bg-gray-100 p-2 w-full"),
            "traceback",
        )

    # -- one record --------------------------------------------------------------------------

    async def record_page(self, key: str) -> None:
        self.frame("records")
        if not await _connected():
            return
        record = await run.io_bound(self.source.record, key) if key else None
        if record is None:
            _test_id(ui.label(f"No record with the cache key {key!r}."), "missing")
            ui.link("Back to the records", "/")
            return
        decoded = await run.io_bound(self.source.value_of, record)
        with ui.row().classes("items-center w-full gap-4"):
            _test_id(ui.label(str(record.get("func_name"))).classes("text-xl font-bold"), "title")
            ui.space()
            if not self.read_only:
                self.delete_button(key)
        with ui.card().classes("w-full"):
            self.metadata(record, decoded)
        with ui.card().classes("w-full"):
            ui.label("Input").classes("text-sm text-gray-500")
            _test_id(ui.label(str(record.get("input_preview") or "-")).classes("bs-pre"), "input")
        with _test_id(ui.card().classes("w-full"), "value"):
            ui.label("Result").classes("text-sm text-gray-500")
            await self.show_value(record.get("content_type"), decoded)
        explanation = await run.io_bound(self.source.explanation, record)
        with ui.card().classes("w-full"):
            ui.label("Key and nearest records (explain)").classes("text-sm text-gray-500")
            _test_id(ui.label(explanation).classes("bs-pre"), "explain")

    def metadata(self, record: Mapping[str, Any], decoded: Decoded) -> None:
        checksum = {None: "none recorded", True: "ok", False: "MISMATCH: damaged bytes"}
        stored = "inline" if decoded.where == "inline" else f"blob at {decoded.where}"
        rows = (
            ("cache key", record.get("cache_key")),
            ("function", record.get("func_name")),
            ("version", record.get("version")),
            ("content type", record.get("content_type")),
            ("stored", stored if decoded.where else record.get("result_type")),
            ("size", render.human_bytes(record.get("size"))),
            ("duration", render.human_seconds(record.get("duration"))),
            ("created", render.when(record.get("created_at"))),
            ("expires", render.when(record.get("expires_at"))),
            ("hits", record.get("hits")),
            ("cost", record.get("cost")),
            ("checksum", f"{record.get('checksum') or '-'} ({checksum[decoded.checksum_ok]})"),
            ("code fingerprint", record.get("code_fingerprint")),
            ("input id", record.get("input_id")),
        )
        _test_id(_pairs(rows), "metadata")

    def delete_button(self, key: str) -> None:
        with ui.dialog() as dialog, ui.card():
            ui.label("Delete this record? The next call with this input computes it again.")
            with ui.row():
                ui.button("Cancel", on_click=lambda: dialog.submit(False)).props("flat")
                _test_id(
                    ui.button("Delete", color="negative", on_click=lambda: dialog.submit(True)),
                    "confirm-delete",
                )

        async def delete() -> None:
            if not await dialog or self.read_only:
                return
            deleted = await run.io_bound(self.source.delete, key)
            ui.notify("Record deleted." if deleted else "It was already gone.")
            ui.navigate.to("/")

        button = ui.button("Delete record", icon="delete", color="negative", on_click=delete)
        _test_id(button, "delete")

    async def show_value(self, content_type: str | None, decoded: Decoded) -> None:
        if decoded.error is not None:
            _test_id(ui.label(decoded.error).classes("bs-pre text-red-800"), "value-error")
            return
        value = decoded.value
        kind = render.view_kind(content_type, value)
        _test_id(ui.label(f"shown as {kind}").classes("text-xs text-gray-400"), "kind")
        text = render.as_text(value)
        if kind == "tree" or (kind == "json" and text is not None):
            self.show_tree(value if kind == "tree" else text)
        elif kind == "markdown" and text is not None:
            html = render.markdown_html(text)
            markdown = ui.html(html, sanitize=render.sanitize_html).classes("nicegui-markdown")
            _test_id(markdown, "markdown")
            self.show_source(text)
        elif kind == "html" and text is not None:
            frame = ui.element("iframe").classes("bs-frame")
            # sandbox first: no scripts, no same-origin, no forms, popups or top navigation.
            frame.props["sandbox"] = ""
            frame.props["referrerpolicy"] = "no-referrer"
            frame.props["title"] = "HTML result, sandboxed"
            frame.props["srcdoc"] = render.sandboxed_srcdoc(text)
            _test_id(frame, "html-frame")
            self.show_source(text)
        elif kind == "mermaid" and text is not None:
            _test_id(ui.mermaid(text[: render.MAX_RENDERED_CHARS], MERMAID_CONFIG), "mermaid")
            self.show_source(text)
        elif kind == "graphviz" and text is not None:
            await self.show_graphviz(text)
        elif kind == "image":
            self.show_image(render.image_data_url(value), "the result, as an image")
        elif kind == "text" and text is not None:
            self.show_text(text)
        elif kind == "bytes":
            self.show_bytes(bytes(value))
        elif isinstance(value, CustomValue):
            _test_id(ui.label(str(value)).classes("bs-pre"), "custom")
            ui.label(
                "A type registered by the user's code: start the dashboard importing the module "
                "that registers it to see its value."
            ).classes("text-xs text-gray-500")
        else:
            self.show_text(_safe_repr(value))

    @staticmethod
    def show_text(text: str) -> None:
        cut = text[: render.MAX_TEXT_CHARS]
        _test_id(ui.label(cut).classes("bs-pre"), "text")
        if len(cut) < len(text):
            ui.label(f"… {len(text) - len(cut):,} more characters not shown").classes("text-xs")

    @staticmethod
    def show_source(text: str) -> None:
        with ui.expansion("Source").classes("w-full text-sm"):
            cut = text[: render.MAX_TEXT_CHARS]
            _test_id(ui.label(cut).classes("bs-pre"), "source")

    @staticmethod
    def show_image(url: str | None, alt: str) -> None:
        if url is None:
            ui.label("not an image this dashboard shows")
            return
        image = ui.element("img").classes("bs-img")
        image.props["src"] = url
        image.props["alt"] = alt
        _test_id(image, "image")

    @staticmethod
    def show_bytes(data: bytes) -> None:
        ui.label(f"{len(data):,} bytes").classes("text-sm")
        head = data[:1024]
        lines = [
            f"{offset:08x}  {head[offset : offset + 16].hex(' ')}"
            for offset in range(0, len(head), 16)
        ]
        if len(head) < len(data):
            lines.append("…")
        _test_id(ui.label("\n".join(lines)).classes("bs-pre"), "bytes")

    def show_tree(self, value: Any) -> None:
        if isinstance(value, str):
            parsed, problem = render.parse_json_text(value)
            if problem is not None:
                ui.label(problem).classes("text-xs text-orange-800")
                self.show_text(value)
                return
            value = parsed
        nodes, left_out = render.json_tree(value)
        tree = _test_id(ui.tree(nodes, label_key="label", node_key="id"), "tree")
        tree.props["dense"] = True
        tree.expand([node["id"] for node in nodes])  # the top level, open
        if left_out:
            ui.label(f"… {left_out:,} more nodes not shown").classes("text-xs")

    async def show_graphviz(self, text: str) -> None:
        drawn = await run.io_bound(render.graphviz_svg, text)
        if drawn is None:
            ui.label("Graphviz (dot) is not installed here: showing the source.").classes(
                "text-xs text-gray-500"
            )
            _test_id(ui.label(text[: render.MAX_TEXT_CHARS]).classes("bs-pre"), "graphviz-source")
            return
        if drawn.svg is None:
            ui.label(f"dot could not draw it: {drawn.error}").classes("bs-pre text-orange-800")
            _test_id(ui.label(text[: render.MAX_TEXT_CHARS]).classes("bs-pre"), "graphviz-source")
            return
        self.show_image(render.image_data_url(drawn.svg, "image/svg+xml"), "Graphviz drawing")
        self.show_source(text)

    # -- stats -------------------------------------------------------------------------------

    async def stats_page(self) -> None:
        self.frame("stats")
        waiting = ui.spinner(size="lg")
        if not await _connected():
            return
        answer = await run.io_bound(self.source.stats)
        waiting.delete()
        if answer is None:
            return
        self.show_note(answer)
        rows = [_stats_row(row) for row in answer.rows]
        totals = {
            name: sum(float(row.get(name) or 0) for row in answer.rows)
            for name in ("records", "hits", "misses", "failures", "time_saved", "tokens_saved",
                         "bytes_inline", "bytes_blob")
        }  # fmt: skip
        calls = totals["hits"] + totals["misses"]
        cards = (
            ("records", f"{totals['records']:,.0f}"),
            ("hits", f"{totals['hits']:,.0f}"),
            ("misses", f"{totals['misses']:,.0f}"),
            ("failures", f"{totals['failures']:,.0f}"),
            ("hit rate", f"{totals['hits'] / calls:.1%}" if calls else "-"),
            ("time saved", render.human_seconds(totals["time_saved"])),
            ("tokens saved", f"{totals['tokens_saved']:,.0f}"),
            ("stored", render.human_bytes(totals["bytes_inline"] + totals["bytes_blob"])),
        )
        with _test_id(ui.row().classes("gap-4 w-full"), "totals"):
            for label, shown in cards:
                with ui.card().classes("min-w-[9rem]"):
                    ui.label(label).classes("text-xs text-gray-500")
                    ui.label(shown).classes("text-xl font-bold")
        table = ui.table(
            rows=rows, columns=STATS_COLUMNS, row_key="func_name",
            pagination={"rowsPerPage": 50, "sortBy": "records", "descending": True},
        ).classes("w-full").props("flat bordered dense")  # fmt: skip
        _test_id(table, "stats")
        table.add_slot("body-cell-func_name", _LINK_CELL)
        for column in STATS_COLUMNS[1:]:
            table.add_slot(f"body-cell-{column['name']}", _SHOWN_CELL)
        if rows:
            height = f"height: {_chart_height(rows)}px"
            with _test_id(ui.row().classes("w-full gap-4 no-wrap"), "stats-charts"):
                for options in stats_charts(rows):
                    ui.echart(options, renderer="svg").classes("w-1/2").style(height)

    # -- failures ----------------------------------------------------------------------------

    async def failures_page(self, func: str, text: str, page: int) -> None:
        self.frame("failures")
        state = {"func": func, "text": text, "page": page}
        with ui.row().classes("items-end gap-4 w-full px-2"):
            func_input = _test_id(
                ui.input("function", value=func).props("clearable debounce=400"),
                "failures-function",
            ).classes("min-w-[18rem]")
            text_input = _test_id(
                ui.input("input or error contains", value=text).props("clearable debounce=400"),
                "failures-text",
            ).classes("min-w-[18rem]")

        @ui.refreshable
        async def listing() -> None:
            offset = (state["page"] - 1) * FAILURES_PER_PAGE
            answer = await run.io_bound(
                self.source.failures, state["func"] or None, state["text"] or None, offset,
                FAILURES_PER_PAGE,
            )  # fmt: skip
            if answer is None:
                return
            self.show_note(answer)
            _test_id(ui.label(_count(answer.total, "failure")).classes("text-sm"), "total")
            pages = max(1, -(-answer.total // FAILURES_PER_PAGE))
            if pages > 1:
                ui.pagination(1, pages, direction_links=True, value=min(state["page"], pages),
                              on_change=lambda e: go(page=e.value))  # fmt: skip
            for row in answer.rows:
                first_line = (str(row.get("message") or "").strip().splitlines() or [""])[0]
                heading = (
                    f"{render.when(row.get('created_at'))} · {row.get('func_name')} · "
                    f"{row.get('error_type')}: {_cut(first_line, 200)}"
                )
                with _test_id(ui.expansion(heading).classes("w-full border"), "failure"):
                    self.failure_body(row)

        async def go(**changes: Any) -> None:
            state.update(changes)
            if "page" not in changes:
                state["page"] = 1
            query = {k: v for k, v in state.items() if v and not (k == "page" and v == 1)}
            ui.navigate.history.replace("/failures" + (f"?{urlencode(query)}" if query else ""))
            listing.refresh()

        func_input.on_value_change(lambda e: go(func=e.value or ""))
        text_input.on_value_change(lambda e: go(text=e.value or ""))
        if not await _connected():
            return
        await listing()


def _pairs(pairs: Any) -> ui.element:
    """Labels and values, two columns; values as text."""
    with ui.grid(columns="auto 1fr").classes("gap-x-4 gap-y-1 text-sm") as grid:
        for label, value in pairs:
            ui.label(label).classes("text-gray-500")
            ui.label("-" if value is None else str(value)).classes("bs-pre")
    return grid


def _stats_row(row: Mapping[str, Any]) -> dict[str, Any]:
    hits, misses = int(row.get("hits") or 0), int(row.get("misses") or 0)
    rate = hits / (hits + misses) if hits + misses else None
    name = str(row.get("func_name"))
    shown = {
        "records": f"{int(row.get('records') or 0):,}",
        "hits": f"{hits:,}",
        "misses": f"{misses:,}",
        "failures": f"{int(row.get('failures') or 0):,}",
        "hit_rate": "-" if rate is None else f"{rate:.1%}",
        "time_saved": render.human_seconds(row.get("time_saved") or 0.0),
        "tokens_saved": f"{float(row.get('tokens_saved') or 0):,.0f}",
        "bytes_inline": render.human_bytes(row.get("bytes_inline") or 0),
        "bytes_blob": render.human_bytes(row.get("bytes_blob") or 0),
    }
    return {
        "func_name": name,
        "href": _href("/", func=name),
        "records": int(row.get("records") or 0),
        "hits": hits,
        "misses": misses,
        "failures": int(row.get("failures") or 0),
        "hit_rate": rate if rate is not None else -1,
        "time_saved": float(row.get("time_saved") or 0),
        "tokens_saved": float(row.get("tokens_saved") or 0),
        "bytes_inline": int(row.get("bytes_inline") or 0),
        "bytes_blob": int(row.get("bytes_blob") or 0),
        "shown": shown,
    }


#: Functions in the stats chart: the most called ones.
CHART_FUNCTIONS = 25
#: Characters of a function name on the chart's axis (the table shows all of it).
CHART_LABEL_CHARS = 48


def _chart_height(rows: list[dict[str, Any]]) -> int:
    return 120 + 28 * min(len(rows), CHART_FUNCTIONS)


def stats_charts(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Two ECharts options over the most called functions: their hits and misses (stacked
    bars), and what their hits saved: time (bottom axis) and tokens (top axis).

    Function names are untrusted: they go in only as data (category values), drawn as SVG
    text. No option is a formatter (NiceGUI evaluates keys starting with ``:`` as JavaScript;
    none here does), and tooltips are drawn as rich text inside the chart, not as HTML.
    """
    shown = sorted(rows, key=lambda row: row["hits"] + row["misses"], reverse=True)
    shown = shown[:CHART_FUNCTIONS][::-1]  # the category axis runs bottom-up
    names = [_cut(row["func_name"], CHART_LABEL_CHARS) for row in shown]

    def chart(x_axes: list[dict[str, Any]], series: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "animation": False,
            "tooltip": {"trigger": "axis", "renderMode": "richText",
                        "axisPointer": {"type": "shadow"}},
            "legend": {"top": 0},
            "grid": {"left": 8, "right": 24, "top": 64, "bottom": 32, "containLabel": True},
            "xAxis": [{"nameLocation": "middle", "nameGap": 26, **axis} for axis in x_axes],
            "yAxis": {"type": "category", "data": names, "axisLabel": {"fontSize": 11}},
            "series": [
                {"type": "bar", "data": [row[field] for row in shown], **options}
                for field, options in series
            ],
        }  # fmt: skip

    calls = chart(
        [{"type": "value", "name": "calls", "minInterval": 1}],
        [("hits", {"name": "hits", "stack": "calls", "itemStyle": {"color": "#26a269"}}),
         ("misses", {"name": "misses", "stack": "calls", "itemStyle": {"color": "#c64600"}})],
    )  # fmt: skip
    saved = chart(
        [{"type": "value", "name": "seconds", "position": "bottom"},
         {"type": "value", "name": "tokens", "position": "top", "splitLine": {"show": False}}],
        [("time_saved", {"name": "time saved (s)", "xAxisIndex": 0,
                         "itemStyle": {"color": "#1c71d8"}}),
         ("tokens_saved", {"name": "tokens saved", "xAxisIndex": 1,
                           "itemStyle": {"color": "#9141ac"}})],
    )  # fmt: skip
    return calls, saved


def _safe_repr(value: Any) -> str:
    try:
        return _value_repr.repr(value)
    except Exception as error:  # a user's __repr__ may raise
        return f"<{type(value).__qualname__}: repr failed ({type(error).__name__})>"


def run_app(dashboard: Dashboard, *, host: str, port: int, open_browser: bool) -> None:
    """Add the pages and serve them (blocking) at ``http://host:port``."""
    dashboard.add_pages()
    shown_host = f"[{host}]" if ":" in host else host
    print(f"beautyspot dashboard for {dashboard.shown_as}: http://{shown_host}:{port}", flush=True)
    ui.run(
        host=host,
        port=port,
        title="beautyspot",
        favicon="🔎",
        show=open_browser,
        reload=False,
        show_welcome_message=False,
        uvicorn_logging_level="warning",
    )
