"""The journey worker embedded in the service (``sendwise serve`` without ``--no-worker``): a
daemon thread started in the app's lifespan and stopped, after its current tick, at shutdown."""

from __future__ import annotations

import logging
import threading
from typing import Any

logger = logging.getLogger(__name__)


def start_journey_worker(store: Any, settings: Any) -> tuple[threading.Thread, threading.Event]:
    from sendwise.journeys.worker import JourneyWorker

    runner = JourneyWorker(store, settings)
    stop = threading.Event()
    thread = threading.Thread(
        target=runner.run_forever, args=(stop,), name="journey-worker", daemon=True
    )
    thread.start()
    return thread, stop


def stop_journey_worker(worker: tuple[threading.Thread, threading.Event] | None) -> None:
    if worker is None:
        return
    thread, stop = worker
    stop.set()
    thread.join(30)
    if thread.is_alive():
        logger.warning("the journey worker did not stop within 30 s")
