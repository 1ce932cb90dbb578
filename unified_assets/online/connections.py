"""Connections that never finish their request's headers: a client that opens a connection and
says nothing, or sends its headers a byte at a time (slowloris), would hold a socket for ever,
since uvicorn times out only idle keep-alive connections. Here each request's headers must be
complete within `header_timeout_s` of the connection opening or the request beginning; past
that the client gets a 408 and the connection is closed, and the response is counted like any
other (route `(headers)`)."""

from __future__ import annotations

from collections.abc import Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_BODY = b'{"detail": "the request headers did not arrive in time", "field": null}'
TIMED_OUT = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
             b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(_BODY) + _BODY)


def with_header_deadline(timeout_s: float, on_timeout: Callable[[], None]) -> type:
    """uvicorn's httptools protocol, with a deadline on each request's headers."""

    class HeaderDeadline(HttpToolsProtocol):
        _deadline = None

        def _arm(self) -> None:
            if self._deadline is None:
                self._deadline = self.loop.call_later(timeout_s, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                on_timeout()
                self.transport.write(TIMED_OUT)
                self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()  # from the first byte on; a keep-alive wait is uvicorn's own timeout

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadline
