"""Shared by the benchmark scripts: repeated timings of a call, after warm-up calls."""

import time


def repeat_times(fn, repeats: int, warmup: int = 1) -> list:
    """Seconds of each of `repeats` calls of fn(), after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def best_time(fn, repeats: int) -> float:
    """Seconds of the fastest of `repeats` calls, after one warm-up call."""
    return min(repeat_times(fn, repeats))
