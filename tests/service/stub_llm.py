"""A scripted OpenAI-compatible chat server over real HTTP (127.0.0.1, ephemeral port).

``POST /v1/chat/completions`` answers in the OpenAI format, as JSON or (``"stream": true``) as
server-sent ``data: {...}`` chunks ending with ``data: [DONE]``. What it answers depends on
``mode``; the scripted sentences are built from the numbered passages of the prompt
(``[n] title — section\\ntext`` blocks), so "cite-ok" really is supported by passage 1.
A request with more than one user message is a regeneration (the service's second request about
sentences that failed verification): the passages are read from the first user message, and the
``retry-*`` modes answer it differently from the first request.
Every request body is recorded in ``requests`` for assertions on the prompt.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = (
    "cite-ok",
    "cite-99",
    "unsupported",
    "invented-url",
    "invented-nct",
    "timeout",
    "500",
    # first request: UNSUPPORTED_TEXT; the regeneration: ...
    "retry-fixes",  # ... the supported sentence of "cite-ok"
    "retry-cite-99",  # ... a sentence of passage 2 cited as [99] (no such passage)
    "retry-abstains",  # ... "Insufficient evidence."
    "retry-500",  # ... HTTP 500
    "retry-repeats",  # first: "cite-ok", "The " + UNSUPPORTED_TEXT; retry: "However, " + "cite-ok"
)
UNSUPPORTED_TEXT = "mRNA-4157 targets PD-L1 in all patients [1]."
INVENTED_URL = "https://example.org/fake-trial"
INVENTED_NCT = "NCT99999999"
SLOW_SECONDS = 3.0

_PASSAGE_HEAD = re.compile(r"^\[(\d+)\] ", re.MULTILINE)


def parse_passages(prompt: str) -> dict[int, tuple[str, str]]:
    """``{n: (heading line, text)}`` of the ``[n] heading\\ntext`` blocks of a user prompt."""
    start = prompt.index("Passages:\n") + len("Passages:\n")
    end = prompt.rindex("\n\nQuestion: ")
    body = prompt[start:end]
    # A passage's text may itself contain "[n] " at a line start; only the next number in
    # sequence opens the next block.
    heads: list[tuple[int, int, int]] = []  # (n, start of block, start of its content)
    expected = 1
    for m in _PASSAGE_HEAD.finditer(body):
        if int(m.group(1)) == expected and (
            m.start() == 0 or body[m.start() - 2 : m.start()] == "\n\n"
        ):
            heads.append((expected, m.start(), m.end()))
            expected += 1
    out: dict[int, tuple[str, str]] = {}
    for i, (n, _, content) in enumerate(heads):
        stop = heads[i + 1][1] - 2 if i + 1 < len(heads) else len(body)
        heading, _, text = body[content:stop].partition("\n")
        out[n] = (heading, text)
    return out


def question_of(prompt: str) -> str:
    """The question line of a user prompt."""
    tail = prompt[prompt.rindex("\n\nQuestion: ") + len("\n\nQuestion: ") :]
    return tail.split("\n", 1)[0]


def pick_sentence(text: str) -> str:
    """A plain prose sentence of ``text`` (one line, ends with a period, no brackets or URLs)."""
    candidates: list[str] = []
    for line in text.split("\n"):
        for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", line.strip()):
            s = s.strip()
            if (
                40 <= len(s) <= 400
                and s.endswith(".")
                and not re.search(r"[\[\]]|https?://|www\.", s)
                and ": " not in s[:30]
            ):
                candidates.append(s)
    if candidates:
        return candidates[0]
    # a passage without prose (a trial's "Conditions: ..." module): its first line as a sentence
    line = next(x.strip() for x in text.split("\n") if x.strip())
    return line if line.endswith(".") else line + "."


def script(mode: str, prompt: str, retry: bool = False) -> str:
    """The completion text for ``mode`` given the (first) user prompt; ``retry``: the request is
    a regeneration."""
    passages = parse_passages(prompt)
    s1 = pick_sentence(passages[1][1])
    if mode == "retry-repeats":
        return (
            f"However, {s1[0].lower()}{s1[1:]} [1]" if retry else f"{s1} [1] The {UNSUPPORTED_TEXT}"
        )
    if mode.startswith("retry-"):
        if not retry:
            return UNSUPPORTED_TEXT
        if mode == "retry-fixes":
            return f"{s1} [1]"
        if mode == "retry-cite-99":
            s2 = pick_sentence(passages[2][1]) if 2 in passages else s1
            return f"{s2[:-1]} [99]."
        if mode == "retry-abstains":
            return "Insufficient evidence."
    if mode == "cite-ok":
        return f"{s1} [1]"  # the marker after the full stop belongs to the sentence
    if mode == "cite-99":
        s2 = pick_sentence(passages[2][1]) if 2 in passages else s1
        return f"{s1[:-1]} [1]. {s2[:-1]} [99]."
    if mode == "unsupported":
        return UNSUPPORTED_TEXT
    if mode == "invented-url":
        return f"{s1[:-1]} [1]. See {INVENTED_URL} for details."
    if mode == "invented-nct":
        return f"{s1[:-1]}, as registered under {INVENTED_NCT} [1]."
    raise ValueError(f"mode {mode!r} has no scripted text")


class StubLLM:
    """The server; set ``mode`` before a request, read ``requests`` after."""

    def __init__(self) -> None:
        self.mode = "cite-ok"
        self.requests: list[dict[str, Any]] = []
        self.replies: list[str] = []
        self._stop = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                stub.requests.append({"path": self.path, "body": body})
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                mode = stub.mode
                users = [m["content"] for m in body["messages"] if m["role"] == "user"]
                retry = len(users) > 1
                if mode == "500" or (mode == "retry-500" and retry):
                    self._json(500, {"error": {"message": "scripted failure", "type": "server"}})
                    return
                if mode == "timeout":
                    stub._stop.wait(SLOW_SECONDS)  # a slow server; the client gives up first
                    # The client has gone: record nothing, or this late reply would land in the
                    # next test's `replies` (seen when the machine is busy).
                    self.close_connection = True
                    return
                try:
                    text = script(mode, users[0], retry)
                except Exception as exc:  # a broken script shows up in the test, not as a hang
                    self._json(500, {"error": {"message": f"stub script failed: {exc!r}"}})
                    return
                stub.replies.append(text)
                if body.get("stream"):
                    self._stream(body, text)
                else:
                    self._json(200, completion(body, text))

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client timed out and hung up
                    pass

            def _stream(self, body: dict[str, Any], text: str) -> None:
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for chunk in stream_chunks(body, text):
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except OSError:
                    pass
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (``.../v1``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def reset(self, mode: str = "cite-ok") -> None:
        """Choose the script and forget earlier requests."""
        assert mode in MODES, mode
        self.mode = mode
        self.requests.clear()
        self.replies.clear()

    def prompts(self) -> list[str]:
        """The user message of every chat request received since the last reset."""
        return [
            [m for m in r["body"]["messages"] if m["role"] == "user"][-1]["content"]
            for r in self.requests
            if r["path"].rstrip("/") == "/v1/chat/completions"
        ]

    def start(self) -> StubLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def completion(req: dict[str, Any], text: str) -> dict[str, Any]:
    """A non-streaming chat.completion object."""
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.get("model", "stub"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


def stream_chunks(req: dict[str, Any], text: str) -> list[dict[str, Any]]:
    """chat.completion.chunk objects: a role chunk, the text in word pieces, a stop chunk."""
    base = {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": req.get("model", "stub"),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    pieces = re.findall(r"\S+\s*|\s+", text)
    return [
        chunk({"role": "assistant", "content": ""}),
        *(chunk({"content": p}) for p in pieces),
        chunk({}, "stop"),
    ]
