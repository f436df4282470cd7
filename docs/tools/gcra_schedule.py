"""Draw docs/img/gcra-schedule.svg from a real run of beautyspot's Limiter.

Two threads share one ``Limiter(tpm=600, burst=3)`` (one token every 0.1 s, three tokens may go
at once after an idle spell). Each asks for a few calls of varying cost back to back, both rest,
then each asks for two more. The picture shows, for every call, when it asked (a circle), when
the limiter let it start (the bar's left edge, read from the clock after ``acquire`` returned)
and how much of the budget it spent (the bar's width: cost x 0.1 s).

    python docs/tools/gcra_schedule.py [OUTPUT.svg]    # default: docs/img/gcra-schedule.svg

The SVG is written by hand (no plotting library): a few rectangles, lines and labels.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))  # this checkout's beautyspot, installed or not

from beautyspot import Limiter  # noqa: E402

__all__ = ["BURST", "TPM", "Call", "draw", "main", "run"]

TPM = 600
BURST = 3
INTERVAL = 60 / TPM  # seconds per token
#: The costs each thread asks for: a first run of calls, a rest, then a second run.
PLAN = {"A": ([1, 2, 1, 3], [1, 2]), "B": ([2, 1, 1, 1], [1, 1])}
REST = 0.6  # long enough for the bucket to drain: the second run starts with a full burst


@dataclass(frozen=True)
class Call:
    """One call as it happened: which thread, its cost, when it asked and when it started."""

    thread: str
    cost: int
    asked: float
    started: float


def run() -> list[Call]:
    """Run the plan on a real limiter; every call, in the order they started."""
    limiter = Limiter(tpm=TPM, burst=BURST)
    calls: list[Call] = []
    lock = threading.Lock()
    rested = threading.Barrier(len(PLAN))
    t0 = time.monotonic()

    def ask(thread: str, cost: int) -> None:
        asked = time.monotonic() - t0
        limiter.acquire(cost)
        started = time.monotonic() - t0
        with lock:
            calls.append(Call(thread, cost, asked, started))

    def work(thread: str) -> None:
        first, second = PLAN[thread]
        for cost in first:
            ask(thread, cost)
        if rested.wait() == 0:  # one thread sleeps; the other waits for it at the barrier
            time.sleep(REST)
        rested.wait()
        for cost in second:
            ask(thread, cost)

    workers = [threading.Thread(target=work, args=(name,)) for name in PLAN]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sorted(calls, key=lambda call: (call.started, call.asked))


# -- drawing ------------------------------------------------------------------------------------

_LEFT, _RIGHT, _TOP, _ROW, _BOTTOM = 120, 30, 64, 22, 78
_WIDTH = 800
_COLORS = {"A": "#00897b", "B": "#ef6c00"}
_STYLE = """
  text { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;
         font-size: 12px; fill: #333; }
  .title { font-size: 15px; font-weight: 600; }
  .note, .tick { fill: #666; }
  .grid { stroke: #e0e0e0; stroke-width: 1; }
  .axis { stroke: #555; stroke-width: 1; }
  .wait { stroke: #999; stroke-width: 1; stroke-dasharray: 3 3; }
  .cost { fill: #fff; font-weight: 600; text-anchor: middle; }
"""


def draw(calls: list[Call]) -> str:
    """The SVG of a run: one row per call, time on the horizontal axis."""
    end = max(call.started + call.cost * INTERVAL for call in calls)
    span = max(0.2, -(-end // 0.2) * 0.2)  # round up to a tick
    plot = _WIDTH - _LEFT - _RIGHT
    height = _TOP + _ROW * len(calls) + _BOTTOM

    def x(seconds: float) -> float:
        return _LEFT + plot * seconds / span

    axis_y = _TOP + _ROW * len(calls) + 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img" '
        'aria-label="When each call of a real run started under Limiter(tpm=600, burst=3)">',
        f"<style>{_STYLE}</style>",
        f'<rect width="{_WIDTH}" height="{height}" fill="#fff"/>',
        f'<text class="title" x="{_LEFT}" y="24">Limiter(tpm={TPM}, burst={BURST}): '
        f"{len(calls)} calls from 2 threads, as they ran</text>",
        f'<text class="note" x="{_LEFT}" y="44">one token every {INTERVAL:g} s; '
        f"{BURST} tokens may go at once after an idle spell</text>",
    ]
    ticks = round(span / 0.1)
    for i in range(ticks + 1):
        seconds = i * 0.1
        parts.append(
            f'<line class="grid" x1="{x(seconds):.1f}" y1="{_TOP - 4}" '
            f'x2="{x(seconds):.1f}" y2="{axis_y}"/>'
        )
        if i % 2 == 0:
            parts.append(
                f'<text class="tick" x="{x(seconds):.1f}" y="{axis_y + 18}" '
                f'text-anchor="middle">{seconds:.1f}</text>'
            )
    parts.append(f'<line class="axis" x1="{_LEFT}" y1="{axis_y}" x2="{x(span)}" y2="{axis_y}"/>')
    parts.append(
        f'<text x="{_LEFT + plot / 2:.1f}" y="{axis_y + 38}" text-anchor="middle">'
        "seconds since the first call</text>"
    )
    per_thread: dict[str, int] = {}
    for row, call in enumerate(calls):
        per_thread[call.thread] = per_thread.get(call.thread, 0) + 1
        top = _TOP + _ROW * row
        middle = top + _ROW / 2
        label = f"{call.thread}{per_thread[call.thread]}, cost {call.cost}"
        parts.append(f'<text x="{_LEFT - 10}" y="{middle + 4}" text-anchor="end">{label}</text>')
        if call.started - call.asked > 0.005:
            parts.append(
                f'<line class="wait" x1="{x(call.asked):.1f}" y1="{middle}" '
                f'x2="{x(call.started):.1f}" y2="{middle}"/>'
            )
        width = x(call.started + call.cost * INTERVAL) - x(call.started)
        parts.append(
            f'<rect class="call" data-thread="{call.thread}" data-cost="{call.cost}" '
            f'data-asked="{call.asked:.4f}" data-started="{call.started:.4f}" '
            f'x="{x(call.started):.1f}" y="{top + 3}" width="{width:.1f}" height="{_ROW - 6}" '
            f'rx="3" fill="{_COLORS[call.thread]}"/>'
        )
        parts.append(
            f'<text class="cost" x="{x(call.started) + width / 2:.1f}" y="{middle + 4}">'
            f"{call.cost}</text>"
        )
        parts.append(
            f'<circle cx="{x(call.asked):.1f}" cy="{middle}" r="3.5" fill="#fff" '
            f'stroke="{_COLORS[call.thread]}" stroke-width="1.5"/>'
        )
    legend_y = axis_y + 58
    parts.append(
        f'<text class="note" x="{_LEFT}" y="{legend_y}">'
        + escape(
            "circle: the call asked for its tokens; dashed line: it waited; bar: it started, "
            f"and spent cost x {INTERVAL:g} s of the budget"
        )
        + "</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    output = Path(argv[0]) if argv else ROOT / "docs" / "img" / "gcra-schedule.svg"
    calls = run()
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(draw(calls), encoding="utf-8")
    for call in calls:
        print(f"{call.thread} cost {call.cost}: asked {call.asked:.3f} s, "
              f"started {call.started:.3f} s")  # fmt: skip
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
