"""The load generators' HTTP/1.1 exchange over a raw keep-alive connection (shared by the
tracking, intake and serving benches): a client as thin as possible, so that the figures are the
service's and not the client library's."""

from __future__ import annotations

import asyncio


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one prepared request and read its whole answer; returns the HTTP status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return int(head[9:12])
