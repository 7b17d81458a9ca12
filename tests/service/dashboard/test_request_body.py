"""Request bodies: a bad or oversized length is refused before reading, and nobody's body
is read before they are authenticated.

Raw sockets, because an HTTP client would not send what an attacker sends: a negative
length, a length and no body, a body that never ends.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace

import pytest

from service.dashboard.web import MAX_BODY, Server
from service.settings import Settings

TOKEN = "body-token-31c9"
#: An answer that waits for a body the client never sends is an answer that read first.
PROMPT_S = 3.0
MiB = 1 << 20


def _head(server: Server, method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", *(
        f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one response; the socket's timeout bounds the wait."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        if not more:
            raise ConnectionError(f"closed without an answer after {data!r}")
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, body


def _ask(server: Server, headers: dict[str, str], body: bytes = b"",
         path: str = "/api/runs") -> tuple[int, dict[str, str], bytes, float]:
    """Send the head (and ``body``, if any) and wait at most PROMPT_S for the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPT_S) as sock:
        started = time.monotonic()
        sock.sendall(_head(server, "POST", path, headers) + body)
        status, got, text = _answer(sock)
        return status, got, text, time.monotonic() - started


@pytest.fixture()
def guarded(base_settings: Settings, serve: Callable[..., Server]) -> Server:
    return serve(replace(base_settings, dashboard_token=TOKEN))


@pytest.mark.parametrize(("length", "status", "problem"), [
    ("-1", 400, "Content-Length"),
    ("12abc", 400, "Content-Length"),
    ("5, 5", 400, "Content-Length"),
    (str(MAX_BODY + 1), 413, "too large"),
    (str(10**15), 413, "too large"),
])
def test_a_bad_or_oversized_length_is_refused_before_reading(guarded, length, status, problem):
    """No body follows: an answer within PROMPT_S proves nothing was read (a read of -1
    bytes used to wait for the end of the stream)."""
    answer, headers, body, seconds = _ask(
        guarded, {"Content-Length": length, "Authorization": f"Bearer {TOKEN}"})
    assert (answer, seconds < PROMPT_S) == (status, True)
    assert problem in json.loads(body)["error"]
    assert headers["connection"] == "close"


def test_a_chunked_body_is_refused_without_reading_it(guarded):
    answer, headers, body, _ = _ask(guarded, {"Transfer-Encoding": "chunked",
                                              "Authorization": f"Bearer {TOKEN}"})
    assert answer == 411 and "Content-Length" in json.loads(body)["error"]
    assert headers["connection"] == "close"


def test_no_body_is_read_before_authentication(guarded):
    """A valid length, no credentials, no body sent: 401 at once, and the connection is
    closed rather than the unread body taken for the next request."""
    answer, headers, _, seconds = _ask(guarded, {"Content-Length": str(MAX_BODY)})
    assert answer == 401 and seconds < PROMPT_S
    assert headers["connection"] == "close"


def test_an_endless_body_is_not_buffered(guarded):
    """Content-Length -1, then 50 MB: the handler used to buffer all of it before answering.
    The server's peak traced allocations while it answers stay far below the body."""
    payload = memoryview(bytes(50 * MiB))
    tracemalloc.start()
    try:
        with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
            sock.sendall(_head(guarded, "POST", "/api/runs", {"Content-Length": "-1"}))
            sender = threading.Thread(target=_send_until_refused, args=(sock, payload),
                                      daemon=True)
            sender.start()
            status, _, _ = _answer(sock)
            sender.join(10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 400
    assert peak < 4 * MiB, f"{peak / MiB:.1f} MiB allocated while answering"


def _send_until_refused(sock: socket.socket, payload: memoryview) -> None:
    try:
        for at in range(0, len(payload), MiB):
            sock.sendall(payload[at:at + MiB])
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the server closed the connection: what we want


def test_an_authenticated_form_is_still_read(guarded):
    """The body is read when a route asks for it: a form without a CSRF token gets 403 for
    that reason, not a hang or a 400."""
    form = b"datasets=timezone"
    answer, _, body, _ = _ask(guarded, {
        "Content-Length": str(len(form)), "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": f"http://127.0.0.1:{guarded.port}"},
        form)
    assert answer == 403 and b"CSRF token missing or invalid" in body
