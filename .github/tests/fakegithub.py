"""A local stand-in for the GitHub REST and GraphQL API: the scripts under test reach it through
GITHUB_API_URL / GITHUB_GRAPHQL_URL, exactly as they reach GitHub from a runner. Routes answer
with canned JSON (or a function of the request); every request is recorded."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict
    body: Any
    headers: dict


class FakeGitHub:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Any] = {}
        self.requests: list[Request] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                request = Request(self.command, url.path, {k: v[0] for k, v in parse_qs(url.query).items()}, body,
                                  {k.lower(): v for k, v in self.headers.items()})
                outer.requests.append(request)
                answer = outer.routes.get((self.command, url.path))
                if callable(answer):
                    answer = answer(request)
                if answer is None:
                    status, payload = 404, {"message": f"no fake route for {self.command} {url.path}"}
                elif isinstance(answer, tuple):
                    status, payload = answer
                else:
                    status, payload = 200, answer
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_PUT = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, method: str, path: str, answer: Any | Callable[[Request], Any]) -> None:
        self.routes[(method, path)] = answer

    def __enter__(self) -> "FakeGitHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sent(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path == path]
