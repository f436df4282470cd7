"""Quick start: run it twice. The second run is served from ./quickstart.db in milliseconds."""

import time

import beautyspot as bs

spot = bs.Spot("quickstart")  # ./quickstart.db, and ./quickstart_blobs/ for large results


@spot.mark(version="v1")
def heavy_process(text: str) -> str:
    time.sleep(1)  # stands for a slow or paid call
    return f"Processed: {text}"


if __name__ == "__main__":
    total = time.perf_counter()
    for text in ["A", "B", "C", "A"]:
        started = time.perf_counter()
        source = "from cache" if heavy_process.is_cached(text) else "computed"
        result = heavy_process(text)
        print(f"{result:<14} {time.perf_counter() - started:7.3f} s  ({source})")
    print(f"total {time.perf_counter() - total:.3f} s")
