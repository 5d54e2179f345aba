"""A real HTTP server on 127.0.0.1 that receives webhooks, for tests of their delivery.

It answers each POST with the next of its ``codes`` (the last one repeats) and keeps what it got.
Requests are answered while the test's own call to deliver is running: nothing waits on a clock.
"""

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Receiver:
    codes: list[int]
    url: str = ""
    received: list[Received] = field(default_factory=list)

    def answer(self) -> int:
        return self.codes.pop(0) if len(self.codes) > 1 else self.codes[0]


@contextmanager
def webhook_receiver(*codes: int, path: str = "/hooks/morm?team=7"):
    """A running receiver answering ``codes`` (200 by default), at ``receiver.url``."""
    receiver = Receiver(codes=list(codes) or [200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"])).decode()
            receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            code = receiver.answer()
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"thanks" if code < 300 else b"receiver is down for maintenance")

        def log_message(self, *args):  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_port}{path}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
