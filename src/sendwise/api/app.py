"""The app factory: settings in, a FastAPI app out (no globals, nothing read at import)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from functools import partial

from fastapi import FastAPI

from sendwise import __version__
from sendwise.access import KeyVerifier, RateLimiter
from sendwise.api import (
    access,
    console,
    errors,
    hooks,
    live,
    privacy,
    profiles,
    tracking,
    webhooks,
)
from sendwise.api import intake as intake_api
from sendwise.api.journeys import start_journey_worker, stop_journey_worker
from sendwise.config import Settings
from sendwise.intake.writer import IntakeWriter
from sendwise.keys import key_ring
from sendwise.privacy.ledger import confirmer, send_confirmations
from sendwise.store import Store, open_store
from sendwise.store.records import utcnow
from sendwise.tracking.quarantine import Quarantine
from sendwise.tracking.recorder import EventRecorder


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Callable[[], datetime] = utcnow,
    journeys: bool = False,
) -> FastAPI:
    """The service of one project. ``store``: an open store to use (tests); by default the
    project's store is opened at start-up and closed at shutdown, after the last events are
    written. ``clock``: the time events are recorded at (a simulation replays its own).
    ``journeys``: run the journey worker in a thread for the app's lifetime (``sendwise
    serve`` does, unless ``--no-worker``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = store is None
        st = store if store is not None else open_store(settings)
        recorder = EventRecorder(
            st,
            flush_seconds=settings.tracking.flush_ms / 1000,
            quarantine=Quarantine.of_project(settings.project),
        )
        await recorder.start()
        confirm = confirmer(settings, app.state.key)
        intake = IntakeWriter(
            st, confirm=confirm, mail=partial(send_confirmations, settings) if confirm else None
        )
        await intake.start()
        app.state.intake = intake
        app.state.store = st
        app.state.verifier = KeyVerifier(st, cache_seconds=settings.api.key_cache_seconds)
        app.state.recorder = recorder
        dispatcher = await hooks.start_dispatcher(st, settings.webhooks)
        worker = start_journey_worker(st, settings) if journeys else None
        console.start(app)  # warm-up in the background: the pages never wait for it
        try:
            yield
        finally:
            console.stop(app)
            stop_journey_worker(worker)
            await hooks.stop_dispatcher(dispatcher)
            await intake.stop()
            await recorder.stop()
            if own:
                st.close()

    app = FastAPI(
        title="sendwise",
        summary="Event intake, live profiles, scores and recommendations, and tracking links.",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.limiter = RateLimiter(
        settings.api.rate_per_second, burst_seconds=settings.api.burst_seconds
    )
    app.state.clock = clock
    app.state.wait_for_commit = settings.tracking.wait_for_commit
    # the KeyRing (current key, retired ones that still verify); ConfigError, before anything
    # starts, when the key is missing, short or public
    app.state.key = key_ring(settings.delivery)
    errors.install(app)
    app.include_router(access.router)
    app.include_router(intake_api.router)
    app.include_router(tracking.router)
    app.include_router(webhooks.router)
    app.include_router(profiles.router)
    app.include_router(live.router)
    app.include_router(hooks.router)
    app.include_router(privacy.router)
    app.include_router(privacy.pages)
    console.install(app)  # the web console under /console (docs/console.md)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
