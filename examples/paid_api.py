"""A fake paid API on 127.0.0.1 for examples and tests: rate-limited, slow, sometimes failing.

``POST /v1/complete`` with the JSON ``{"prompt": "..."}`` answers ``{"text": "..."}`` after a
short latency, like a hosted model. Like a real paid API, it

- enforces its rate: ``requests_per_minute`` (6000 = 100 a second) over any sliding 1-second
  window, plus ``tolerance`` requests (default 5). Above that it answers ``429 Too Many
  Requests`` with ``Retry-After``; a rejected request does not count against the rate. Why a
  tolerance: a client paced exactly at 100/s starts 101 requests in some 1-second windows, and
  thread scheduling and connection setup shift arrivals by milliseconds (measured here: up to
  102 in a window). Real APIs forgive as much, often more (their windows are a minute long);
  5 leaves 40 ms of jitter and still rejects a client 6% over the rate.
- fails ``failure_rate`` (5%) of the requests it admits with ``503 Service Unavailable``. The
  draw is seeded per prompt and per attempt, so every run fails the same requests.
- counts requests per prompt (``requests``), answers per prompt (``answered``) and responses
  per status (``statuses``), so a test can tell what each run of a batch sent.

>>> import json, urllib.request
>>> with PaidAPI(failure_rate=0) as api:
...     request = urllib.request.Request(api.url + "/v1/complete", data=b'{"prompt": "hi"}')
...     json.load(urllib.request.urlopen(request))["text"]
"(fake-1) a one-line answer to 'hi'"
"""

from __future__ import annotations

import collections
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["REQUESTS_PER_MINUTE", "PaidAPI"]

#: The published limit of the fake API.
REQUESTS_PER_MINUTE = 6000


class PaidAPI:
    """The fake API, served from a background thread while the ``with`` block runs.

    :param requests_per_minute: the rate it admits.
    :param tolerance: requests over the rate it forgives in any 1-second window.
    :param failure_rate: share of admitted requests answered 503.
    :param latency: seconds each admitted request takes.
    :param seed: which requests fail.
    """

    def __init__(
        self,
        *,
        requests_per_minute: float = REQUESTS_PER_MINUTE,
        tolerance: int = 5,
        failure_rate: float = 0.05,
        latency: float = 0.02,
        seed: int = 0,
    ) -> None:
        self.per_second_limit = requests_per_minute / 60 + tolerance
        self.failure_rate = failure_rate
        self.latency = latency
        self.seed = seed
        self.requests: collections.Counter[str] = collections.Counter()
        self.answered: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[int] = collections.Counter()
        self._admitted: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` while serving."""
        if self._server is None:
            raise RuntimeError("the API is not running: use it as `with PaidAPI() as api:`")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> PaidAPI:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def status_for(self, prompt: str) -> int:
        """Count one request for ``prompt`` and decide its status: 200, 429 or 503."""
        with self._lock:
            now = time.monotonic()
            self.requests[prompt] += 1
            while self._admitted and self._admitted[0] <= now - 1.0:
                self._admitted.popleft()
            if len(self._admitted) >= self.per_second_limit:
                status = 429
            else:
                self._admitted.append(now)
                status = 503 if self._fails(prompt, self.requests[prompt]) else 200
            self.statuses[status] += 1
            if status == 200:
                self.answered[prompt] += 1
            return status

    def _fails(self, prompt: str, attempt: int) -> bool:
        return random.Random(f"{self.seed}:{prompt}:{attempt}").random() < self.failure_rate


class _Server(ThreadingHTTPServer):
    # Eight workers connect at once: a backlog of 5 would drop connections, and the kernel's
    # one-second SYN retry would look like a slow API.
    request_queue_size = 128
    api: PaidAPI

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hung up: normal
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        if self.path != "/v1/complete":
            self._reply(404, {"error": "POST /v1/complete"})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            prompt = body["prompt"]
            if not isinstance(prompt, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self._reply(400, {"error": 'send JSON {"prompt": "..."}'})
            return
        api = self.server.api
        status = api.status_for(prompt)
        if status == 429:
            self._reply(429, {"error": "rate limit exceeded"}, {"Retry-After": "1"})
        elif status == 503:
            self._reply(503, {"error": "overloaded, try again"})
        else:
            time.sleep(api.latency)
            self._reply(200, {"text": f"(fake-1) a one-line answer to {prompt!r}"})

    def _reply(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a batch sends hundreds of requests."""
