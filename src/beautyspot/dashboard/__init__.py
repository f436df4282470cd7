"""A local web dashboard over a TaskDB: records, one record's value, stats and failures.

``beautyspot ui DB`` runs it; in Python::

    from beautyspot.dashboard import serve
    serve("results.db")                 # http://127.0.0.1:8080, opens a browser tab

It needs ``pip install "beautyspot[dashboard]"`` (NiceGUI). Everything read from the database is
shown as untrusted data: escaped text, images as images, Markdown without its raw HTML, Mermaid
in strict mode, and HTML results only inside a sandboxed iframe.
"""

from __future__ import annotations

import ipaddress
import os
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

from beautyspot.errors import BeautyspotWarning, ConfigurationError

if TYPE_CHECKING:
    from beautyspot.db import TaskDB
    from beautyspot.storage import BlobStorageBase

__all__ = ["serve"]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def exposure_warning(host: str, port: int, *, read_only: bool) -> str | None:
    """What to warn about binding ``host``: ``None`` for this machine only (a loopback address
    or ``localhost``), else who could reach the records and how to keep them local."""
    try:
        local = host in LOCAL_HOSTS or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: only "localhost" is known to stay on this machine
        local = False
    if local:
        return None
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if read_only:
        return f"anyone who reaches {shown}:{port} can read these records; bind 127.0.0.1"
    return (
        f"anyone who reaches {shown}:{port} can read and delete these records; "
        "add --read-only, or bind 127.0.0.1"
    )


def serve(
    db: TaskDB | str | os.PathLike[str],
    *,
    storage: BlobStorageBase | str | os.PathLike[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 8080,
    open_browser: bool = True,
    imports: Iterable[str] = (),
    read_only: bool = False,
) -> None:
    """Serve the dashboard until interrupted (Ctrl+C); one dashboard per process.

    :param db: a SQLite file path, a store URL (``redis://...``, ``postgresql://...``) or a
        :class:`~beautyspot.db.TaskDB`. Its password is never shown.
    :param storage: the Spot's blob storage (folder, URL or instance), to show results stored
        as blobs; by default ``<name>_blobs`` beside a ``<name>.db`` file, when it exists.
    :param host: the address to bind: ``127.0.0.1`` (this machine only) unless you mean it.
    :param port: the TCP port.
    :param open_browser: open a browser tab on the dashboard once it is up.
    :param imports: modules to import first: the types their Spots and Serializers register
        are decoded; a value of any other user type shows as "custom type code N, M bytes".
    :param read_only: hide (and refuse) actions that change the database.

    Binding an address other than this machine's (``127.0.0.1``, ``localhost``, ``::1``)
    warns with a :class:`~beautyspot.errors.BeautyspotWarning`: the dashboard has no login.
    """
    exposed = exposure_warning(host, port, read_only=read_only)
    if exposed is not None:
        warnings.warn(exposed, BeautyspotWarning, stacklevel=2)
    try:
        import nicegui  # noqa: F401
    except ImportError as error:
        raise ConfigurationError(
            "the dashboard needs NiceGUI, which is not installed: "
            'pip install "beautyspot[dashboard]"'
        ) from error
    from beautyspot.dashboard.data import Source, describe, guess_storage
    from beautyspot.dashboard.pages import Dashboard, run_app
    from beautyspot.db import TaskDB, taskdb_from
    from beautyspot.reading import Decoder
    from beautyspot.storage import storage_from

    if isinstance(imports, str):
        imports = (imports,)
    decoder = Decoder(imports)  # the user's modules first: they may register types
    task_db = taskdb_from(db)
    blobs = storage_from(storage) if storage is not None else guess_storage(task_db)
    source = Source(task_db, blobs, decoder.loads)
    dashboard = Dashboard(source, shown_as=describe(db), read_only=read_only)
    try:
        run_app(dashboard, host=host, port=port, open_browser=open_browser)
    finally:
        if not isinstance(db, TaskDB):  # opened here: closed here; the caller's stays open
            task_db.close()
