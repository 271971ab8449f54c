"""A real OpenAI-compatible HTTP server on 127.0.0.1 whose replies a test scripts.

The real local teacher (llama.cpp serving Gemma-3-270M, see ``conftest.teacher_server``) is used for the plumbing
against a real model. Its replies are weak and unpredictable, so behaviour that depends on *what* the LLM says
(malformed JSON, a plan that names a skill, a slow reply, an HTTP error) is scripted here: requests still go
through the ``openai`` package and real HTTP, only the model is replaced by ``reply(request) -> str``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], "str | tuple[int, str]"]


class ScriptedLLMServer:
    """``with ScriptedLLMServer(reply) as server:`` serves ``server.base_url`` until the block ends.

    ``reply(request_json)`` returns the reply text, or ``(status, message)`` for an HTTP error. ``delay`` seconds
    are slept before each reply (time-outs). ``requests`` holds every request body received.
    """

    def __init__(self, reply: Reply, *, delay: float = 0.0) -> None:
        self.reply = reply
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append(body)
                if server.delay:
                    time.sleep(server.delay)
                result = server.reply(body)
                if isinstance(result, tuple):
                    status, message = result
                    self._send(status, {"error": {"message": message, "type": "scripted", "code": status}})
                    return
                usage = {"prompt_tokens": 10, "completion_tokens": max(1, len(result) // 4)}
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                if self.path.endswith("/chat/completions"):
                    choice = {
                        "index": 0,
                        "message": {"role": "assistant", "content": result},
                        "finish_reason": "stop",
                    }
                    kind = "chat.completion"
                else:
                    choice = {"index": 0, "text": result, "finish_reason": "stop", "logprobs": None}
                    kind = "text_completion"
                payload = {
                    "id": "scripted",
                    "object": kind,
                    "created": 0,
                    "model": body.get("model", "scripted"),
                    "choices": [choice],
                    "usage": usage,
                }
                self._send(200, payload)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def last_prompt(request: dict[str, Any]) -> str:
    """The user prompt of a chat request, or a completions request's prompt."""
    if "messages" in request:
        return request["messages"][-1]["content"]
    return request.get("prompt", "")
