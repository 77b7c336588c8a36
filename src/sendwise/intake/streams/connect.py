"""The Redis client of streaming intake: opened from a URL, errors as one-line StreamErrors,
and the consumer group made when it is missing."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from sendwise.errors import ConfigError, StreamError

CONNECT_TIMEOUT = 5.0


def safe_url(url: str) -> str:
    """``url`` without its user and password, fit to print."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or parts.path or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unreadable URL)"
    return f"{parts.scheme}://{host}{port}{parts.path if parts.hostname else ''}"


def _where(redis: Any) -> str:
    kwargs = getattr(getattr(redis, "connection_pool", None), "connection_kwargs", {})
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', 6379)}"


@contextlib.contextmanager
def redis_errors(redis: Any) -> Iterator[None]:
    """Redis's connection, timeout and command errors as :class:`StreamError` (one line)."""
    from redis.exceptions import ConnectionError, RedisError, TimeoutError

    try:
        yield
    except (ConnectionError, TimeoutError) as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
        raise StreamError(f"Redis at {_where(redis)} is not reachable: {reason}") from None
    except RedisError as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__
        raise StreamError(f"Redis at {_where(redis)} refused: {reason}") from None


def connect(url: str) -> Any:
    """A client of the Redis server at ``url``, checked with a PING."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT)
    except ValueError as exc:
        raise ConfigError(f"streams.url {safe_url(url)!r} is not a Redis URL: {exc}") from None
    with redis_errors(client):
        client.ping()
    return client


def ensure_group(redis: Any, stream: str, group: str) -> bool:
    """Create ``group`` on ``stream`` (and the stream) reading from its first entry, unless it
    exists; True when it was created."""
    from redis.exceptions import ResponseError

    with redis_errors(redis):
        try:
            redis.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            raise
    return True
