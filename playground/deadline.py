"""A deadline for a request's headers: a client that sends them a byte at a time ("slowloris") cannot hold a
connection open for ever. uvicorn limits the time a connection may idle between requests (keep-alive) and, here,
the time a body may take (``playground.guard``), but not the time the headers may take: this protocol does.

From the moment a connection opens, or a response is complete and the connection waits for the next request, the
client has ``HEADER_SECONDS`` to send a whole request line and its headers; then the connection is closed.
"""
import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_SECONDS = 10


class HeaderDeadline(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self.header_timer = self.loop.call_later(HEADER_SECONDS, self.headers_too_slow)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.header_timer is not None:     # the headers are in
            self.header_timer.cancel()
            self.header_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.header_timer is None and not self.transport.is_closing():                # wait for the next one
            self.header_timer = self.loop.call_later(HEADER_SECONDS, self.headers_too_slow)

    def headers_too_slow(self) -> None:
        self.header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None
        super().connection_lost(exc)
