"""Running the service with uvicorn (``sendwise serve``)."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

PROJECT_ENV = "SENDWISE_SERVE_PROJECT"
WORKER_ENV = "SENDWISE_SERVE_JOURNEYS"


def app_from_environment() -> FastAPI:
    """uvicorn's factory in each worker process: the project folder comes from the parent."""
    import gc

    from sendwise.api.app import create_app
    from sendwise.config import load_settings

    journeys = os.environ.get(WORKER_ENV, "1") == "1"
    app = create_app(load_settings(Path(os.environ[PROJECT_ENV])), journeys=journeys)
    # Everything imported so far lives as long as the process: out of the collector's sight,
    # a full collection walks only what requests made (the read API's p99 fell from over
    # 100 ms to a few ms with its caches filled; docs/serving.md)
    gc.freeze()
    return app


def serve(
    project: Path,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str = "warning",
    journeys: bool = True,
) -> None:
    import uvicorn

    from sendwise.config import load_settings
    from sendwise.keys import key_ring
    from sendwise.store import open_store

    settings = load_settings(project)
    key_ring(settings.delivery)  # one-line ConfigError here rather than in every worker
    open_store(settings).close()  # migrate once, before the workers start
    os.environ[PROJECT_ENV] = str(Path(project).resolve())
    os.environ[WORKER_ENV] = "1" if journeys else "0"
    uvicorn.run(
        "sendwise.api.serve:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,
        http="httptools",
        loop="uvloop" if os.name != "nt" else "asyncio",
        timeout_graceful_shutdown=10,
    )
