"""Constants and helpers shared by several test files (fixtures live in conftest.py)."""

from __future__ import annotations

import collections
import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"  # the first eight bytes of every PNG file


@contextlib.contextmanager
def serve(directory: Path, delay: float = 0.0, route: Callable | None = None):
    """A real HTTP server on 127.0.0.1 (a free port) over ``directory``; yields (base URL, hits per
    request path). ``route(path, headers)`` may stand in for an API: it returns None (serve the
    file at ``path``), another path to serve instead, or a reply ``(status, headers, body)``."""
    hits = collections.Counter()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, *args):
            pass

        def do_GET(self):
            hits[self.path] += 1
            if delay:
                time.sleep(delay)
            reply = route(self.path, self.headers) if route else None
            if isinstance(reply, tuple):
                status, headers, body = reply
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)
                return
            if isinstance(reply, str):
                self.path = reply
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def dead_url() -> str:
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


#: The committed standard dataset specs and registry.json (package data), read directly: tests of
#: the registry code compare against the files, not against that code's own answer.
STANDARD = Path(__file__).resolve().parents[1] / "fieldbench" / "datasets" / "standard"
