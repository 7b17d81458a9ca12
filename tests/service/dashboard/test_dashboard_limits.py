"""Request bodies against a real ``python -m service.dashboard``: a bad, missing or oversized
length is refused from the headers, before authentication would let a body in, and the
server neither waits for nor holds the 50 MB a client keeps sending.

Each case opens a raw socket, sends the headers, then streams 50 MB from a second
thread while the first waits for the status line. What is measured: the seconds from
the headers to the answer, how much of the body the server let in before it hung up,
and the growth of the server process's peak RSS over the request.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.dashboard.limits import MAX_BODY
from tests.service.dashboard.support import Process

pytestmark = pytest.mark.e2e

TOKEN = "limits-token-5d1c0b"
BODY = 50 * 1024 * 1024
BLOCK = 64 * 1024
#: The answer must come back before a tenth of the body could be pushed over loopback.
AT_ONCE_S = 2.0
#: Far below the 50 MB body: what serving one small request may cost, with room to spare.
RSS_SLACK = 10 * 1024 * 1024


@dataclass
class Outcome:
    status: int
    head: str  # the status line and headers
    seconds: float  # from the end of the request headers to the status line
    sent: int  # body bytes the server took (into its socket buffers too) before it hung up
    peak_growth: int  # the server's peak RSS after, less its RSS before


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def _reset_peak(pid: int) -> None:
    """Start VmHWM afresh (Linux: 5 to clear_refs); if refused, the growth is overstated."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def plain(total: int) -> Iterator[bytes]:
    block = b"x" * BLOCK
    for _ in range(total // BLOCK):
        yield block


def chunked(total: int) -> Iterator[bytes]:
    for block in plain(total):
        yield b"%x\r\n%s\r\n" % (len(block), block)
    yield b"0\r\n\r\n"


def send(process: Process, head: str, body: Callable[[int], Iterator[bytes]]) -> Outcome:
    """Send ``head``, stream ``BODY`` bytes from another thread, read the answer."""
    pid = process.proc.pid
    rss_before = _status(pid, "VmRSS")
    _reset_peak(pid)
    sent = 0

    def stream(sock: socket.socket) -> None:
        """All of the body, then end-of-file (a server reading to EOF answers then)."""
        nonlocal sent
        try:
            for block in body(BODY):
                sock.sendall(block)
                sent += len(block)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server hung up: what we want

    with socket.create_connection(("127.0.0.1", process.port), timeout=60) as sock:
        sock.sendall(head.encode() + b"\r\n")
        start = time.monotonic()
        pusher = threading.Thread(target=stream, args=(sock,), daemon=True)
        pusher.start()
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        seconds = time.monotonic() - start
        pusher.join(60)  # until the server hangs up, or takes the whole body
    assert answer, "the server closed the connection without an answer"
    time.sleep(0.2)  # let the server finish with the connection before reading its memory
    head_text = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    return Outcome(status=int(head_text.split()[1]), head=head_text, seconds=seconds, sent=sent,
                   peak_growth=_status(pid, "VmHWM") - rss_before)


def request_head(process: Process, *headers: str, auth: bool = True) -> str:
    lines = ["POST /api/runs HTTP/1.1", f"Host: 127.0.0.1:{process.port}",
             "Content-Type: application/json", *headers]
    if auth:
        lines.append(f"Authorization: Bearer {TOKEN}")
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture()
def server(settings, dashboard_process) -> Process:
    """The dashboard as users run it, with a token so that authentication is in play."""
    process: Process = dashboard_process(settings, GEOLOAD_DASHBOARD_TOKEN=TOKEN)
    return process


def assert_refused_at_once(outcome: Outcome, status: int) -> None:
    assert outcome.status == status, outcome.head
    assert outcome.seconds < AT_ONCE_S, outcome
    assert outcome.sent < BODY / 2, outcome  # the server hung up instead of draining it
    assert outcome.peak_growth < RSS_SLACK, outcome


@pytest.mark.parametrize("auth", [False, True], ids=["anonymous", "authenticated"])
def test_a_negative_length_is_refused_before_reading(server: Process, auth: bool) -> None:
    """The bug on the old stack: ``Content-Length: -1`` read 50 MB before its 401."""
    outcome = send(server, request_head(server, "Content-Length: -1", auth=auth), plain)
    assert_refused_at_once(outcome, 400)


def test_an_anonymous_body_is_refused_before_reading(server: Process) -> None:
    """Authentication is decided from the headers: the 401 comes before the body."""
    outcome = send(server, request_head(server, f"Content-Length: {BODY}", auth=False), plain)
    assert_refused_at_once(outcome, 401)
    assert "www-authenticate: basic" in outcome.head.lower()


def test_a_declared_length_over_the_cap_is_413_before_reading(server: Process) -> None:
    outcome = send(server, request_head(server, f"Content-Length: {BODY}"), plain)
    assert_refused_at_once(outcome, 413)
    assert "connection: close" in outcome.head.lower()
    assert "content-security-policy" in outcome.head.lower()


def test_a_chunked_body_is_cut_at_the_cap(server: Process) -> None:
    outcome = send(server, request_head(server, "Transfer-Encoding: chunked"), chunked)
    assert_refused_at_once(outcome, 413)


@pytest.mark.parametrize("length", [None, "12abc", "1, 2"], ids=["missing", "not-a-number",
                                                                 "two-values"])
def test_a_missing_or_malformed_length_is_400(server: Process, length: str | None) -> None:
    headers = [] if length is None else [f"Content-Length: {length}"]
    outcome = send(server, request_head(server, *headers), plain)
    assert_refused_at_once(outcome, 400)


def test_a_body_at_the_cap_is_read(server: Process) -> None:
    """The limit refuses only what is over it: a body of exactly the cap reaches the handler
    (which then refuses it for what it says, not for its size)."""
    body = b'{"datasets": "' + b"x" * (MAX_BODY - 16) + b'"}'
    assert len(body) == MAX_BODY
    head = request_head(server, f"Content-Length: {len(body)}", "Connection: close")
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n" + body)
        answer = b"".join(iter(lambda: sock.recv(65536), b"")).decode("latin-1")
    assert answer.split()[1] == "403", answer  # past the limit: refused for its CSRF token
    assert "CSRF" in answer
