"""The one HTTP handler base the lab's small servers share (api replicas, dependency
stub, webhook receiver, orchestrator): quiet logs, no Nagle delay, one way to answer."""
from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler


class QuietHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # errors only; no line per request
        pass

    def setup(self) -> None:
        super().setup()
        # Without this Python answers with a flat ~40 ms (Nagle + delayed ACK).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
