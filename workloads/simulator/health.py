"""/metrics, /healthz and /readyz on one port: prometheus-client's WSGI app behind a tiny dispatcher.

/healthz fails when a loop has stopped beating (a stuck thread: restart the pod); /readyz fails when
the samples have nowhere to go (database unreachable and the spool unwritable too).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class Health:
    def __init__(self, stale_after: float = 30.0) -> None:
        self.stale_after = stale_after
        self._beats: dict[str, float] = {}
        self._ready = False
        self._why = "starting"
        self._lock = threading.Lock()

    def beat(self, loop: str) -> None:
        self._beats[loop] = time.monotonic()

    def retire(self, loop: str) -> None:
        """A loop that finished on purpose is no longer expected to beat."""
        self._beats.pop(loop, None)

    def set_ready(self, ready: bool, why: str = "") -> None:
        with self._lock:
            self._ready, self._why = ready, why

    def live(self) -> tuple[bool, str]:
        now = time.monotonic()
        stuck = sorted(name for name, at in dict(self._beats).items() if now - at > self.stale_after)
        if stuck:
            return False, f"stuck: {', '.join(stuck)}"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        with self._lock:
            return self._ready, self._why or ("ok" if self._ready else "not ready")


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would drown the log."""


def app(registry: CollectorRegistry, health: Health) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def dispatch(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in ("/healthz", "/readyz"):
            ok, why = health.live() if path == "/healthz" else health.ready()
            status = "200 OK" if ok else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [f"{why}\n".encode()]
        if path in ("/metrics", "/"):
            result: Iterable[bytes] = metrics(environ, start_response)
            return result
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics, /healthz or /readyz\n"]

    return dispatch


class HttpEndpoint:
    """The server on its own daemon thread; `port` is the bound port (useful when asked for port 0)."""

    def __init__(self, port: int, registry: CollectorRegistry, health: Health, host: str = "0.0.0.0") -> None:
        self._server = make_server(
            host, port, app(registry, health), server_class=_ThreadingServer, handler_class=_QuietHandler
        )
        self.port = int(self._server.server_port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
