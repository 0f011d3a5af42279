"""A loopback Infobip for the messaging benchmark: ``POST /sms/3/messages`` and
``GET /sms/3/logs`` in Infobip's documented JSON (INTEGRATIONS.md 1.3, 1.4), plus two bench-only
routes: ``POST /_bench/fault`` (answer 429 with Retry-After and 503, alternately, for N seconds)
and ``GET /_bench/stats`` (requests, messages accepted, ids accepted more than once).

    .venv/bin/python bench/fake_infobip.py --port 8765

A thread per connection, HTTP/1.1 keep-alive, so the dispatcher's pooled connections stay open.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PENDING = {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED"}
DELIVERED = {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET"}


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: Counter[str] = Counter()
        self.requests = Counter[str]()
        self.fault_until = 0.0
        self.fault_answers = 0


STATE = State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        path = urlparse(self.path).path
        body = self._body()
        if path == "/_bench/fault":
            STATE.fault_until = time.monotonic() + float(json.loads(body)["seconds"])
            self._send(200, {})
            return
        if path != "/sms/3/messages":
            self._send(404, {"errorCode": "E404", "description": "Not found"})
            return
        if not (self.headers.get("Authorization") or "").startswith("App "):
            self._send(401, {"errorCode": "E401", "description": "Unauthorized"})
            return
        with STATE.lock:
            STATE.requests["send"] += 1
            faulty = time.monotonic() < STATE.fault_until
            if faulty:
                STATE.fault_answers += 1
                turn = STATE.fault_answers
        if faulty:
            if turn % 2:
                self._send(
                    429,
                    {
                        "errorCode": "E429",
                        "description": "Too many requests sent.",
                        "action": "",
                        "violations": [],
                        "resources": [],
                    },
                    {"Retry-After": "1"},
                )
            else:
                self._send(503, {"errorCode": "E503", "description": "Service unavailable"})
            return
        payload = json.loads(body)
        answer = []
        ids = []
        for message in payload["messages"]:
            for destination in message["destinations"]:
                ids.append(destination["messageId"])
                answer.append(
                    {
                        "messageId": destination["messageId"],
                        "status": PENDING,
                        "destination": destination["to"],
                        "details": {"messageCount": 1},
                    }
                )
        with STATE.lock:
            STATE.seen.update(ids)
        self._send(200, {"bulkId": f"bulk-{time.monotonic_ns()}", "messages": answer})

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/_bench/stats":
            with STATE.lock:
                duplicates = sum(1 for count in STATE.seen.values() if count > 1)
                self._send(
                    200,
                    {
                        "send_requests": STATE.requests["send"],
                        "log_requests": STATE.requests["logs"],
                        "fault_answers": STATE.fault_answers,
                        "accepted": sum(STATE.seen.values()),
                        "distinct": len(STATE.seen),
                        "duplicates": duplicates,
                    },
                )
            return
        if url.path == "/_bench/seen":
            with STATE.lock:
                self._send(200, sorted(STATE.seen))
            return
        if url.path != "/sms/3/logs":
            self._send(404, {"errorCode": "E404", "description": "Not found"})
            return
        wanted = parse_qs(url.query).get("messageId", [])
        with STATE.lock:
            STATE.requests["logs"] += 1
            results = [
                {"messageId": i, "destination": "", "status": DELIVERED, "messageCount": 1}
                for i in wanted
                if i in STATE.seen
            ]
        self._send(200, {"results": results})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
