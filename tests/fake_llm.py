"""A local OpenAI-compatible server for tests (127.0.0.1 only): injects 429 / 500 / timeouts / 4xx for
chosen records and attempts, and records every request."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# An action for (record key, attempt): "ok", ("429", retry_after), ("500",), ("sleep", seconds),
# ("400",), ("401-echo",): a 401 whose body echoes the Authorization header (a careless server),
# ("ok-echo",): a success whose description echoes the Authorization header.
Plan = Callable[[str, int], tuple]


class FakeLLM:
    """A ThreadingHTTPServer on 127.0.0.1 implementing POST /v1/chat/completions."""

    def __init__(self, plan: Plan | None = None, delay: float = 0.0):
        self.plan: Plan = plan or (lambda key, attempt: ("ok",))
        self.delay = delay
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.attempts: dict[str, int] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                user = json.loads(body["messages"][1]["content"])
                key = record_key(user)
                with fake.lock:
                    attempt = fake.attempts.get(key, 0)
                    fake.attempts[key] = attempt + 1
                    fake.requests.append({"path": self.path, "body": body, "user": user, "key": key,
                                          "attempt": attempt, "time": time.monotonic(),
                                          "auth": self.headers.get("Authorization")})
                action = fake.plan(key, attempt)
                if fake.delay:
                    time.sleep(fake.delay)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # client gave up
                    self._respond(action, body, user, key)

            def _respond(self, action: tuple, body: dict, user: dict, key: str) -> None:
                kind = action[0]
                if kind == "sleep":
                    time.sleep(action[1])
                    kind = "ok"
                if kind in ("ok", "ok-echo"):
                    text = f"There are {user['count']} people in image. Description of {key}."
                    if kind == "ok-echo":
                        text += f" (request header: {self.headers.get('Authorization')})"
                    self._json(200, {
                        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                        "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                    })
                elif kind == "429":
                    self._json(429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                               {"Retry-After": str(action[1])})
                elif kind == "500":
                    self._json(500, {"error": {"message": "boom", "type": "server_error"}})
                elif kind == "400":
                    self._json(400, {"error": {"message": "bad request", "type": "invalid_request_error"}})
                elif kind == "401-echo":
                    auth = self.headers.get("Authorization")
                    self._json(401, {"error": {"message": f"invalid key in header {auth}", "type": "auth"}})

            def _json(self, status: int, obj: dict, headers: dict | None = None) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def requests_for(self, key: str) -> list[dict]:
        return [r for r in self.requests if r["key"] == key]


def record_key(user: dict) -> str:
    """Test records are told apart by their first person's centre x (the prompt carries no id)."""
    return f"r{int(user['people'][0]['center'][0]) - 100:03d}"
