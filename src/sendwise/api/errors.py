"""One table from the error tree to HTTP statuses; the answer never echoes secrets or input."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from sendwise import errors

logger = logging.getLogger(__name__)

# most specific first: the first class the error is an instance of decides
STATUS = (
    (errors.SignatureError, 403),
    (errors.NotFoundError, 404),
    (errors.TrackingError, 404),
    (errors.InputError, 400),
    (errors.ConfigError, 503),
    (errors.StoreError, 503),
    (errors.SendwiseError, 500),
)


def status_of(exc: errors.SendwiseError) -> int:
    return next(code for cls, code in STATUS if isinstance(exc, cls))


def install(app: FastAPI) -> None:
    async def handle(_request: Request, exc: Exception) -> PlainTextResponse:
        assert isinstance(exc, errors.SendwiseError)
        code = status_of(exc)
        if code >= 500:
            logger.error("%s: %s", exc.__class__.__name__, exc)
        return PlainTextResponse(str(exc) if code < 500 else "service unavailable", code)

    app.add_exception_handler(errors.SendwiseError, handle)
