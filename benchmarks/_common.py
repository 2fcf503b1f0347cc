"""Shared benchmark helpers: interleaved timing, peak-RSS sampling, CSV rows with machine, date and version."""

from __future__ import annotations

import csv
import datetime
import gc
import os
import platform
import random
import statistics
import threading
import time
from pathlib import Path

import crossentropy

RESULTS = Path(__file__).parent / "results"


def cpuinfo() -> tuple[str, list[str]]:
    """The CPU model and flags as read now from /proc/cpuinfo (platform strings where it is missing)."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key.strip() == "model name" and model == (platform.processor() or platform.machine()):
                    model = val.strip()
                elif key.strip() == "flags" and not flags:
                    flags = val.split()
    except OSError:
        pass
    return model, flags


def vector_flags() -> str:
    """The SIMD flags that matter to the kernels (AVX, AVX2, AVX-512 family, FMA, F16C), space separated."""
    keep = ("avx", "fma", "f16c", "sse4_2")
    return " ".join(f for f in cpuinfo()[1] if f.startswith(keep)) or "(none reported)"


def machine() -> str:
    return f"{platform.node()}|{cpuinfo()[0]}|{os.cpu_count()} cpus"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every millisecond on a side thread."""

    def __enter__(self):
        gc.collect()
        self.base = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self.peak = max(self.peak, rss_bytes())
        self._stop.set()
        self._thread.join()

    @property
    def extra(self) -> int:
        return self.peak - self.base


def interleaved(variants: dict, rounds: int) -> dict[str, float]:
    """Median seconds of each callable over ``rounds`` rounds, the variants interleaved within each round in an
    order shuffled per round (seeded): no variant always follows the same one, whose caches it would inherit."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants.items())
    shuffle = random.Random(0).shuffle
    for _ in range(rounds):
        shuffle(order)
        for name, fn in order:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def append_csv(name: str, rows: list[dict]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.csv"
    stamp = {"machine": machine(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
             "version": crossentropy.__version__}
    rows = [{**stamp, **row} for row in rows]
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        if new:
            writer.writeheader()
        writer.writerows(rows)
    return path
