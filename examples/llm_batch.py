"""A paid-API batch: 200 prompts paced to the API's limit, retried, resumable.

    python examples/llm_batch.py     # starts a local fake API (paid_api.py) and asks it 200 things
    python examples/llm_batch.py     # again: all answers come from ./llm_batch.db, none is sent

The fake API admits 100 requests a second (429 above that) and fails 5% of requests with 503.
The code below has no sleep, no try/except/continue and no bookkeeping of what is done:

- pacing: ``tpm=`` on the Spot and ``@spot.limiter`` under ``@spot.mark``; cached answers cost
  no tokens. Drop ``tpm=`` and the API answers 429.
- retries: ``retries=5, retry_on=TransientError``: a 503 is tried again after a short, jittered
  backoff, through the limiter like any request.
- resume: press Ctrl-C half-way (or kill the process) and run it again: only the prompts
  without a saved answer are sent.

``--server URL`` uses an API that is already running (the tests count its requests).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
import urllib.error
import urllib.request

import paid_api

import beautyspot as bs

spot = bs.Spot("llm_batch", tpm=paid_api.REQUESTS_PER_MINUTE)  # the API's published limit


class TransientError(Exception):
    """The API said "not now" (429) or "try again" (503)."""


@spot.mark(version="v1")
@spot.limiter(cost=1)
def ask(prompt: str) -> str:
    """One completion; the endpoint comes from the environment, like an API key would."""
    request = urllib.request.Request(
        os.environ["PAID_API_URL"] + "/v1/complete",
        data=json.dumps({"prompt": prompt}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.load(response)["text"])
    except urllib.error.HTTPError as exc:
        if exc.code in (429, 503):
            raise TransientError(f"HTTP {exc.code} from the API") from exc
        raise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", help="URL of a running API (default: start the fake one)")
    parser.add_argument("--items", type=int, default=200, help="how many prompts (200)")
    args = parser.parse_args(argv)
    prompts = [f"Summarize review #{number} in one line." for number in range(args.items)]

    with contextlib.ExitStack() as stack:
        api = None if args.server else stack.enter_context(paid_api.PaidAPI())
        os.environ["PAID_API_URL"] = args.server or api.url  # type: ignore[union-attr]
        started = time.perf_counter()
        answers = spot.map(ask, prompts, workers=8, retries=5, retry_on=TransientError)
        elapsed = time.perf_counter() - started

    print(f"{len(answers)} answers in {elapsed:.1f} s; the first: {answers[0]}")
    if api is not None:
        seen = api.statuses
        print(
            f"the API saw {sum(seen.values())} requests: {seen[200]} answered, "
            f"{seen[429]} rate-limited (429), {seen[503]} failed (503) and retried"
        )


if __name__ == "__main__":
    main()
