"""A Postmark-shaped ESP on 127.0.0.1 that can refuse, hang, drop and fail requests.

anymail's real Postmark backend talks to it through ANYMAIL_POSTMARK_API_URL, so tests
see exactly the exceptions production would. It records every request it received and
every message it accepted, keyed by our metadata's `message_uuid`, and answers
Postmark's outbound message search (`GET /messages/outbound?metadata_message_uuid=`).

`plan(recipient, attempt)` decides each send (attempt counts from 1 per recipient):
"accept"; "500"; "slow" (accept, but answer after `slow_seconds`: a client read
timeout); "drop" (read the request, close without answering).
"""

import json
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

Plan = Callable[[str, int], str]


class EspStub:
    def __init__(self, plan: Plan | None = None, slow_seconds: float = 3.0):
        self.plan = plan or (lambda recipient, attempt: "accept")
        self.slow_seconds = slow_seconds
        self.lock = threading.Lock()
        self.received: list[tuple[str, str, str]] = []  # (message_uuid, recipient, outcome)
        self.accepted: dict[str, str] = {}  # message_uuid → our MessageID
        self.accepted_count: Counter = Counter()
        self.attempts: Counter = Counter()
        #: client (host, port) → message_uuid of requests still being answered slowly
        self.in_flight: dict[tuple[str, int], str] = {}
        self.port = _free_port()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> "EspStub":
        """Listen (again) on the same port."""
        stub = self

        class Handler(_Handler):
            esp = stub

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def refuse(self) -> None:
        """Stop listening: connections are refused until start() again."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    stop = refuse

    def handle_send(self, body: dict, client: tuple[str, int]) -> tuple[int, dict | None]:
        recipient = body.get("To", "")
        message_uuid = (body.get("Metadata") or {}).get("message_uuid", "")
        with self.lock:
            self.attempts[recipient] += 1
            outcome = self.plan(recipient, self.attempts[recipient])
            self.received.append((message_uuid, recipient, outcome))
            if outcome in ("accept", "slow"):
                self.accepted.setdefault(message_uuid, str(uuid.uuid4()))
                self.accepted_count[message_uuid] += 1
            if outcome == "slow":
                self.in_flight[client] = message_uuid
        if outcome == "500":
            return 500, {"ErrorCode": 100, "Message": "Maintenance"}
        if outcome == "drop":
            return 0, None
        if outcome == "slow":
            time.sleep(self.slow_seconds)
            with self.lock:
                self.in_flight.pop(client, None)
        return 200, {
            "To": recipient,
            "SubmittedAt": "2026-03-10T10:00:00Z",
            "MessageID": self.accepted[message_uuid],
            "ErrorCode": 0,
            "Message": "OK",
        }

    def search(self, query: dict) -> dict:
        message_uuid = (query.get("metadata_message_uuid") or [""])[0]
        with self.lock:
            found = self.accepted.get(message_uuid)
        messages = [{"MessageID": found, "Status": "Sent"}] if found else []
        return {"TotalCount": len(messages), "Messages": messages}


class _Handler(BaseHTTPRequestHandler):
    esp: EspStub

    def log_message(self, *args) -> None:
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        status, answer = self.esp.handle_send(body, self.client_address)
        if answer is None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._answer(status, answer)

    def do_GET(self):
        parts = urlsplit(self.path)
        if parts.path.rstrip("/") != "/messages/outbound":
            self._answer(404, {"ErrorCode": 404, "Message": "Not found"})
            return
        self._answer(200, self.esp.search(parse_qs(parts.query)))

    def _answer(self, status: int, answer: dict) -> None:
        data = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (read timeout) or was killed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
