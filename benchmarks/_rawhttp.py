"""A minimal HTTP/1.1 keep-alive client for the load benchmark.

httpx spends about 2.5 ms of CPU per request here, as much as the service's own work on a
window-mode request, so a benchmark driving hundreds of requests a second through it from
the same two cores measures the client. This client formats requests by hand and reads
``Content-Length`` bodies only (what the service always sends): a few tenths of a
millisecond per request.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode, urlsplit


class RawClient:
    """A pool of keep-alive connections to one ``http://host:port`` (at most ``size``)."""

    def __init__(self, url: str, *, token: str | None, size: int = 100) -> None:
        u = urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.size = size
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._open = 0
        self._slots = asyncio.Semaphore(size)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self._head = f"Host: {self.host}:{self.port}\r\n{auth}"

    async def request(self, method: str, path: str, *, body: bytes | None = None, json_body: Any = None,
                      params: dict | None = None) -> tuple[int, bytes]:
        """(status, body). Raises OSError / asyncio.IncompleteReadError on transport failure."""
        if json_body is not None:
            body = json.dumps(json_body).encode()
        if params:
            path = f"{path}?{urlencode(params)}"
        data = (f"{method} {path} HTTP/1.1\r\n{self._head}Content-Type: application/json\r\n"
                f"Content-Length: {len(body or b'')}\r\n\r\n").encode() + (body or b"")
        async with self._slots:
            if self._idle:  # the server may have closed an idle connection (keep-alive timeout)
                try:
                    return await self._exchange(self._idle.pop(), data)
                except (asyncio.IncompleteReadError, ConnectionError) as err:
                    if getattr(err, "partial", b"") != b"":
                        raise  # a response had begun: not a stale connection
            return await self._exchange(await asyncio.open_connection(self.host, self.port), data)

    async def _exchange(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                        data: bytes) -> tuple[int, bytes]:
        reader, writer = conn
        try:
            writer.write(data)
            status, payload, keep = await self._response(reader)
        except BaseException:
            writer.close()
            raise
        if keep:
            self._idle.append(conn)
        else:
            writer.close()
        return status, payload

    @staticmethod
    async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, keep = 0, True
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                keep = False
        return status, await reader.readexactly(length), keep

    async def close(self) -> None:
        for _, w in self._idle:
            w.close()
        self._idle.clear()
