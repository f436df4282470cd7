"""A streamed chat reply, cached: run it twice. The first run streams the reply word by word as
the (fake) model writes it; the second replays it from ./streaming_chat.db at once."""

import time
from collections.abc import Iterator

import beautyspot as bs

spot = bs.Spot("streaming_chat")


@spot.mark(version="v1")
def chat(prompt: str) -> Iterator[str]:
    """Stands for a streaming chat-completion API: the reply comes one token at a time."""
    reply = f"You asked: {prompt} It means computing a result once and keeping it for later."
    for token in reply.split(" "):
        time.sleep(0.02)  # the model thinking
        yield token + " "


if __name__ == "__main__":
    prompt = "what is memoization?"
    source = "replayed from the cache" if chat.is_cached(prompt) else "streamed from the model"
    started = time.perf_counter()
    for token in chat(prompt):
        print(token, end="", flush=True)
    print(f"\n({source} in {time.perf_counter() - started:.2f} s)")
