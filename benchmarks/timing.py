"""Shared by the benchmark scripts: the best of repeated timings, after a warm-up call."""

import time


def best_time(fn, repeats: int) -> float:
    """Seconds of the fastest of `repeats` calls of fn(), after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)
