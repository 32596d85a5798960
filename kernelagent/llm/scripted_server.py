"""SCRIPTED ENDPOINT — replies come from a script, not a model: an OpenAI-compatible HTTP server for offline
tests and demos that answers /v1/chat/completions from rules (see ScriptedLLMServer) so the real client code runs."""

from __future__ import annotations

import argparse
import copy
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BANNER = "scripted endpoint — replies come from a script, not a model"
META_HEADER = "x-kernelagent-meta"
DEFAULT_MODEL = "scripted-model"


@dataclass
class RecordedRequest:
    """One request as received; `status` is what the server answered (a timed-out client may never see it)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    meta: dict[str, str]
    rule_id: str | None
    status: int
    timestamp: float = field(default_factory=time.time)


@dataclass
class Answer:
    """What the server sends back: assistant text (status 200) or an OpenAI-shaped error."""

    status: int = 200
    text: str = ""
    message: str = ""
    code: str | None = None
    retry_after: float | None = None
    delay_s: float = 0.0
    rule_id: str | None = None
    # A body sent as is with status 200, whatever the request asked: what a broken proxy or server answers.
    raw: str | None = None
    content_type: str = "application/json"


def load_script(path: str | Path) -> dict:
    """Read a JSON script; `{"file": ...}` replies are resolved relative to the script's folder."""
    path = Path(path)
    script = json.loads(path.read_text())
    script.setdefault("base_dir", str(path.resolve().parent))
    return script


def parse_meta(header: str | None) -> dict[str, str]:
    """`task=seed;seed=0` -> {"task": "seed", "seed": "0"}."""
    pairs = (part.split("=", 1) for part in (header or "").split(";") if "=" in part)
    return {key.strip(): value.strip() for key, value in pairs}


def message_text(messages: list[dict]) -> str:
    """Concatenate all message contents; content may be a string or a list of content parts."""
    texts = []
    for message in messages or []:
        content = message.get("content") or ""
        if isinstance(content, list):
            content = "".join(part if isinstance(part, str) else str(part.get("text", "")) for part in content)
        texts.append(str(content))
    return "\n".join(texts)


def rule_matches(match: dict, meta: dict[str, str], text: str, model: str | None) -> bool:
    if any(meta.get(key) != str(value) for key, value in match.get("meta", {}).items()):
        return False
    if any(needle not in text for needle in match.get("contains", [])):
        return False
    return "model" not in match or match["model"] == model


def approx_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4) if text else 0


def error_body(status: int, message: str, code: str | None = None) -> dict:
    error_type = "server_error" if status >= 500 else "rate_limit_error" if status == 429 else "invalid_request_error"
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


class ScriptedLLMServer:
    """Serve scripted chat completions. Each rule's replies are consumed in order; once exhausted the LAST reply
    repeats forever, unless the rule sets `"exhausted": "error"` (then every further request gets a 500).
    `{"file": ...}` replies are read relative to the script's `base_dir` (load_script sets it; default: cwd)."""

    def __init__(self, script: dict | str | Path, host: str = "127.0.0.1", port: int = 0,
                 log_path: str | Path | None = None) -> None:
        self.script = copy.deepcopy(script) if isinstance(script, dict) else load_script(script)
        self.base_dir = Path(self.script.get("base_dir", "."))
        self.rules: list[dict] = self.script.get("rules", [])
        for index, rule in enumerate(self.rules):
            rule.setdefault("id", f"rule{index}")
            self._check_rule(rule)
        self.log_path = Path(log_path) if log_path else None
        self._lock = threading.Lock()
        self._served: dict[str, int] = {}
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        # Daemon threads: a reply sleeping on delay_s must neither block other requests nor stop().
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    def _check_rule(self, rule: dict) -> None:
        """Fail at start-up, not mid-test, on a rule that could never answer."""
        if not rule.get("replies"):
            raise ValueError(f"scripted rule {rule['id']!r} has no replies")
        for reply in rule["replies"]:
            if isinstance(reply, dict) and "file" in reply and not (self.base_dir / reply["file"]).is_file():
                raise FileNotFoundError(f"scripted rule {rule['id']!r}: no file {self.base_dir / reply['file']}")

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def start(self) -> ScriptedLLMServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="scripted-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes replies sleeping on delay_s
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> ScriptedLLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def count(self, **meta: str) -> int:
        """Number of chat requests whose meta header contains all these key=values, e.g. count(task="seed")."""
        wanted = {key: str(value) for key, value in meta.items()}
        return sum(1 for req in self.requests if req.path.endswith("/chat/completions")
                   and all(req.meta.get(key) == value for key, value in wanted.items()))

    def reset_counts(self) -> None:
        """Forget recorded requests (what count() sees); the rules' reply positions are kept."""
        with self._lock:
            self._requests.clear()

    def allowed_models(self) -> list[str]:
        return list(self.script.get("models") or [DEFAULT_MODEL])

    def check_access(self, headers: dict[str, str], model: str | None) -> Answer | None:
        """Auth then model checks, in the order the real API applies them."""
        key = self.script.get("api_key")
        if key and headers.get("authorization") != f"Bearer {key}":
            return Answer(401, message="Incorrect API key provided (scripted endpoint).", code="invalid_api_key")
        if model is not None and self.script.get("models") and model not in self.script["models"]:
            return Answer(404, message=f"The model `{model}` does not exist (scripted endpoint).",
                          code="model_not_found")
        return None

    def answer_chat(self, body: dict, meta: dict[str, str]) -> Answer:
        text = message_text(body.get("messages", []))
        for rule in self.rules:
            if rule_matches(rule.get("match") or {}, meta, text, body.get("model")):
                return self._next_reply(rule)
        return Answer(400, message=f"no scripted reply matched this request (X-KernelAgent-Meta: {meta or 'none'}, "
                                   f"model: {body.get('model')!r}, text starts: {text[:200]!r})",
                      code="no_scripted_reply")

    def _next_reply(self, rule: dict) -> Answer:
        with self._lock:  # per-rule position; concurrent requests must each take a distinct reply
            served = self._served.get(rule["id"], 0)
            self._served[rule["id"]] = served + 1
        replies = rule["replies"]
        if served >= len(replies) and rule.get("exhausted") == "error":
            return Answer(500, message=f"scripted rule {rule['id']!r} has no replies left", rule_id=rule["id"])
        answer = self._reply_to_answer(replies[min(served, len(replies) - 1)])
        answer.rule_id = rule["id"]
        return answer

    def _reply_to_answer(self, reply: str | dict) -> Answer:
        if isinstance(reply, str):
            return Answer(text=reply)
        delay = float(reply.get("delay_s", 0))
        if "status" in reply and reply["status"] != 200:
            return Answer(int(reply["status"]), message=reply.get("message", f"scripted error {reply['status']}"),
                          retry_after=reply.get("retry_after"), delay_s=delay, code=reply.get("code"))
        if "raw" in reply:
            return Answer(raw=str(reply["raw"]), content_type=reply.get("content_type", "application/json"),
                          delay_s=delay)
        if "file" in reply:
            return Answer(text=(self.base_dir / reply["file"]).read_text(), delay_s=delay)
        return Answer(text=str(reply.get("text", "")), delay_s=delay)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            if self.log_path is not None:
                entry = {"path": request.path, "meta": request.meta, "rule": request.rule_id,
                         "status": request.status, "model": (request.body or {}).get("model"),
                         "timestamp": request.timestamp}
                with self.log_path.open("a") as log:
                    log.write(json.dumps(entry) + "\n")

    def wait(self, seconds: float) -> None:
        self._stopping.wait(seconds)


def completion_payload(answer: Answer, model: str, prompt_tokens: int) -> dict:
    completion_tokens = approx_tokens(answer.text)
    return {"id": f"chatcmpl-scripted-{time.time_ns()}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": usage(prompt_tokens, completion_tokens)}


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def stream_chunks(answer: Answer, model: str, prompt_tokens: int, include_usage: bool, piece: int = 16) -> list[dict]:
    """The chat.completion.chunk sequence OpenAI sends: role, content pieces, finish_reason, optional usage."""
    base = {"id": f"chatcmpl-scripted-{time.time_ns()}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model, "system_fingerprint": None}
    deltas = [{"role": "assistant", "content": ""}]
    deltas += [{"content": answer.text[i:i + piece]} for i in range(0, len(answer.text), piece)]
    chunks = [{**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if include_usage:
        chunks.append({**base, "choices": [], "usage": usage(prompt_tokens, approx_tokens(answer.text))})
    return chunks


def _make_handler(server: ScriptedLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            self._handle(self._models_route)

        def do_POST(self) -> None:
            self._handle(self._chat_route)

        def _handle(self, route: Callable[[dict, dict, Any], tuple[Answer, Callable[[], None]]]) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            meta = parse_meta(headers.get(META_HEADER))
            body = self._read_json()
            answer, send = route(headers, meta, body)
            # Record on arrival, before any scripted delay: a client killed while waiting still counts, and once a
            # client holds its reply, count() already includes that request.
            server.record(RecordedRequest(self.command, self.path, headers, body, meta, answer.rule_id, answer.status))
            if answer.delay_s:
                server.wait(answer.delay_s)
            try:
                send()
            except (BrokenPipeError, ConnectionResetError):  # client gave up (e.g. its timeout); nothing to send
                pass

        def _read_json(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw) if raw else None
            except ValueError:
                return {"_unparsed": raw.decode("utf-8", "replace")}

        def _models_route(self, headers: dict, meta: dict, body: Any) -> tuple[Answer, Callable[[], None]]:
            if self.path.rstrip("/") != "/v1/models":
                return self._error(Answer(404, message=f"unknown path {self.path} (scripted endpoint)"))
            denied = server.check_access(headers, None)
            if denied:
                return self._error(denied)
            data = [{"id": name, "object": "model", "created": 0, "owned_by": BANNER}
                    for name in server.allowed_models()]
            return Answer(), lambda: self._send_json(200, {"object": "list", "data": data})

        def _chat_route(self, headers: dict, meta: dict, body: Any) -> tuple[Answer, Callable[[], None]]:
            if self.path.rstrip("/") != "/v1/chat/completions":
                return self._error(Answer(404, message=f"unknown path {self.path} (scripted endpoint)"))
            if not isinstance(body, dict) or "_unparsed" in body:
                return self._error(Answer(400, message="request body is not a JSON object"))
            answer = server.check_access(headers, body.get("model")) or server.answer_chat(body, meta)
            if answer.status != 200:
                return self._error(answer)
            if answer.raw is not None:
                return answer, lambda: self._send_raw(answer.raw, answer.content_type)
            model = body.get("model") or DEFAULT_MODEL
            prompt_tokens = approx_tokens(message_text(body.get("messages", [])))
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                chunks = stream_chunks(answer, model, prompt_tokens, include_usage)
                return answer, lambda: self._send_stream(chunks)
            return answer, lambda: self._send_json(200, completion_payload(answer, model, prompt_tokens))

        def _error(self, answer: Answer) -> tuple[Answer, Callable[[], None]]:
            extra = {"Retry-After": str(answer.retry_after)} if answer.retry_after is not None else {}
            payload = error_body(answer.status, answer.message, answer.code)
            return answer, lambda: self._send_json(answer.status, payload, extra)

        def _send_json(self, status: int, payload: dict, extra_headers: dict | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (extra_headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_raw(self, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _send_stream(self, chunks: list[dict]) -> None:
            # HTTP/1.0 handler: the connection closes after [DONE], which marks the end of the SSE body.
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            for chunk in chunks:
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=f"OpenAI-compatible {BANNER}.")
    parser.add_argument("--script", required=True, type=Path, help="JSON script of rules and replies")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default=0, type=int, help="0 picks a free port")
    parser.add_argument("--log", type=Path, help="append one JSON line per request (meta, rule, status)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = ScriptedLLMServer(args.script, args.host, args.port, log_path=args.log).start()
    print(f"SCRIPTED_LLM_URL={server.base_url}", flush=True)
    print(f"[{BANNER}] serving {args.script}", file=sys.stderr, flush=True)
    while not stop.wait(0.5):  # short waits keep the main thread responsive to signals
        pass
    server.stop()


if __name__ == "__main__":
    main()
