"""Thread settings for the numeric libraries.

implicit runs its own thread pool and asks that BLAS not run one of its own inside it (it warns
otherwise, and the nested pools make ALS ~10x slower): its work runs under
``threadpool_limits(1, "blas")``, which also silences that warning without filtering it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from threadpoolctl import ThreadpoolController


@cache
def _controller() -> ThreadpoolController:
    # Finding the loaded libraries scans the process's maps (~7 ms): done once, not per call.
    return ThreadpoolController()


@contextmanager
def blas_single() -> Iterator[None]:
    with _controller().limit(limits=1, user_api="blas"):
        yield


def cores(threads: int | None) -> int:
    """The threads to use: ``threads`` when set, else every core this process may use."""
    if threads:
        return threads
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
