"""Real alert receivers on loopback for the system tier: an HTTP server that records every
JSON body POSTed to it (a webhook, Slack's included) and an SMTP server (aiosmtpd) that records
every message. Each answers as a real one would; `failing` makes the webhook answer 503."""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webhook:
    def __init__(self):
        self.bodies: list[dict] = []
        self.failing = False
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if received.failing:
                    self.send_response(503)
                else:
                    received.bodies.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kinds(self) -> list[str]:
        return [b.get("kind") for b in self.bodies]


class Mailbox:
    def __init__(self):
        self.messages: list[EmailMessage] = []
        received = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                received.messages.append(message_from_bytes(envelope.original_content,
                                                            policy=policy.default))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    def subjects(self) -> list[str]:
        return [m["Subject"] for m in self.messages]
