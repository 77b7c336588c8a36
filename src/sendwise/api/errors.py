"""One table from the error tree to HTTP statuses; the answer never echoes secrets or input."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from sendwise import errors
from sendwise.api.auth import CHALLENGE

logger = logging.getLogger(__name__)
JSON_PREFIXES = ("/v1/",)
"""Routes of the JSON API answer errors as ``{"error": "..."}``; tracking links in plain text."""

# most specific first: the first class the error is an instance of decides
STATUS = (
    (errors.AuthenticationError, 401),
    (errors.ScopeError, 403),
    (errors.RateLimitedError, 429),
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
    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.SendwiseError)
        code = status_of(exc)
        if code >= 500:
            logger.error("%s: %s", exc.__class__.__name__, exc)
        text = str(exc) if code < 500 else "service unavailable"
        headers = {}
        if isinstance(exc, errors.AuthenticationError):
            headers["WWW-Authenticate"] = CHALLENGE
        if isinstance(exc, errors.RateLimitedError):
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        if request.url.path.startswith(JSON_PREFIXES):
            return JSONResponse({"error": text}, code, headers=headers)
        return PlainTextResponse(text, code, headers=headers)

    app.add_exception_handler(errors.SendwiseError, handle)
