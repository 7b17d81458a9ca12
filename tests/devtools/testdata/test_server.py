"""The loopback server: HTTP semantics a resuming downloader relies on, and fault injection."""

from __future__ import annotations

import hashlib
import http.client
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from pathlib import Path

import pytest
import requests

from devtools.testdata.mirror import GADM_URL, Manifest
from devtools.testdata.server import DataServer, serve

PATH = "/gadm/gadm4.1/gadm_410-levels.zip"
SIZE = 300_000


@pytest.fixture()
def payload(tmp_path: Path) -> bytes:
    """Random bytes in a file at an upstream-like path, plus a secret outside the root."""
    data = os.urandom(SIZE)
    target = tmp_path / "root" / PATH.lstrip("/")
    target.parent.mkdir(parents=True)
    target.write_bytes(data)
    (tmp_path / "secret.txt").write_text("do not serve me")
    return data


@pytest.fixture()
def server(tmp_path: Path, payload: bytes) -> Iterator[DataServer]:
    with serve(tmp_path / "root") as srv:
        yield srv


@pytest.fixture()
def url(server: DataServer) -> str:
    return server.url + PATH


def raw_get(server: DataServer, path: str) -> tuple[int, bytes]:
    """A GET whose path no client library normalises (for traversal attempts)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# --- plain serving -------------------------------------------------------------------------


def test_get_serves_the_file_with_validators(server: DataServer, url: str,
                                             payload: bytes) -> None:
    r = requests.get(url, timeout=5)
    assert r.status_code == 200 and r.content == payload
    assert r.headers["Content-Length"] == str(SIZE)
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["Content-Type"] == "application/zip"
    assert r.headers["ETag"].startswith('"') and r.headers["ETag"].endswith('"')
    assert r.headers["Last-Modified"].endswith("GMT")
    method, path, headers, status, sent = server.log[-1]
    assert (method, path, status, sent) == ("GET", PATH, 200, SIZE)
    assert headers.get("user-agent", "").startswith("python-requests")


def test_head_has_headers_but_no_body(server: DataServer, url: str) -> None:
    r = requests.head(url, timeout=5)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["Content-Length"] == str(SIZE)
    assert (server.log[-1].method, server.log[-1].bytes_sent) == ("HEAD", 0)


def test_missing_file_is_404(server: DataServer) -> None:
    assert requests.get(server.url + "/gadm/nope.zip", timeout=5).status_code == 404
    assert requests.get(server.url + "/gadm", timeout=5).status_code == 404  # no listings


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/gadm/../../secret.txt",
                                  "/..%2fsecret.txt", "/gadm/%2E%2E/%2E%2E/secret.txt"])
def test_path_traversal_is_rejected(server: DataServer, path: str) -> None:
    status, body = raw_get(server, path)
    assert status in (403, 404) and b"do not serve me" not in body


def test_symlink_out_of_root_is_rejected(server: DataServer, tmp_path: Path) -> None:
    (tmp_path / "root" / "link.txt").symlink_to(tmp_path / "secret.txt")
    status, body = raw_get(server, "/link.txt")
    assert status == 403 and b"do not serve me" not in body


def test_url_for_relative_and_absolute(server: DataServer, tmp_path: Path) -> None:
    assert server.url_for(PATH.lstrip("/")) == server.url + PATH
    assert server.url_for(tmp_path / "root" / PATH.lstrip("/")) == server.url + PATH


# --- ranges and conditionals -------------------------------------------------------------


@pytest.mark.parametrize(("spec", "start", "stop"), [
    ("bytes=1000-", 1000, SIZE),
    ("bytes=1000-1999", 1000, 2000),
    ("bytes=0-0", 0, 1),
    ("bytes=-500", SIZE - 500, SIZE),
    ("bytes=299000-999999", 299_000, SIZE),
])
def test_range_gives_206(server: DataServer, url: str, payload: bytes, spec: str, start: int,
                         stop: int) -> None:
    r = requests.get(url, headers={"Range": spec}, timeout=5)
    assert r.status_code == 206
    assert r.content == payload[start:stop]
    assert r.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{SIZE}"
    assert r.headers["Content-Length"] == str(stop - start)
    assert server.log[-1].headers["Range"] == spec and server.log[-1].status == 206


@pytest.mark.parametrize("spec", [f"bytes={SIZE}-", f"bytes={SIZE + 10}-{SIZE + 20}", "bytes=-0"])
def test_unsatisfiable_range_is_416(url: str, spec: str) -> None:
    r = requests.get(url, headers={"Range": spec}, timeout=5)
    assert r.status_code == 416
    assert r.headers["Content-Range"] == f"bytes */{SIZE}"


@pytest.mark.parametrize("spec", ["bytes=0-1,5-6", "items=0-5", "bytes=9-3", "bytes=x-"])
def test_unsupported_or_malformed_range_gives_the_whole_file(url: str, payload: bytes,
                                                             spec: str) -> None:
    r = requests.get(url, headers={"Range": spec}, timeout=5)
    assert r.status_code == 200 and r.content == payload


def test_if_range_with_current_etag_or_date_gives_206(url: str, payload: bytes) -> None:
    head = requests.head(url, timeout=5).headers
    for validator in (head["ETag"], head["Last-Modified"]):
        r = requests.get(url, headers={"Range": "bytes=10-", "If-Range": validator}, timeout=5)
        assert r.status_code == 206 and r.content == payload[10:]


def test_if_range_mismatch_gives_full_200(url: str, payload: bytes) -> None:
    for validator in ('"stale-etag"', 'W/"weak"', formatdate(0, usegmt=True)):
        r = requests.get(url, headers={"Range": "bytes=10-", "If-Range": validator}, timeout=5)
        assert r.status_code == 200 and r.content == payload
        assert "Content-Range" not in r.headers


def test_conditional_get_gives_304(url: str) -> None:
    head = requests.head(url, timeout=5).headers
    etag, modified = head["ETag"], head["Last-Modified"]
    r = requests.get(url, headers={"If-None-Match": etag}, timeout=5)
    assert r.status_code == 304 and r.content == b"" and r.headers["ETag"] == etag
    assert requests.get(url, headers={"If-None-Match": f'"x", {etag}'},
                        timeout=5).status_code == 304
    assert requests.get(url, headers={"If-Modified-Since": modified}, timeout=5).status_code == 304
    assert requests.get(url, headers={"If-None-Match": '"other"'}, timeout=5).status_code == 200
    old = formatdate(0, usegmt=True)
    assert requests.get(url, headers={"If-Modified-Since": old}, timeout=5).status_code == 200


def test_etag_changes_when_the_file_changes(server: DataServer, url: str,
                                            tmp_path: Path) -> None:
    etag = requests.head(url, timeout=5).headers["ETag"]
    target = tmp_path / "root" / PATH.lstrip("/")
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    r = requests.get(url, headers={"If-None-Match": etag}, timeout=5)
    assert r.status_code == 200 and r.headers["ETag"] != etag


def test_parallel_range_requests(url: str, payload: bytes) -> None:
    step = SIZE // 8

    def part(i: int) -> bytes:
        spec = f"bytes={i * step}-{min(SIZE, (i + 1) * step) - 1}"
        return requests.get(url, headers={"Range": spec}, timeout=5).content

    with ThreadPoolExecutor(8) as pool:
        assert b"".join(pool.map(part, range(8))) == payload[:8 * step]


# --- faults ------------------------------------------------------------------------------


def test_status_fault_with_body_and_headers_then_once_clears(server: DataServer,
                                                             url: str) -> None:
    server.fault(PATH, "status", status=503, body="busy", headers={"Retry-After": "1"},
                 once=True)
    r = requests.get(url, timeout=5)
    assert (r.status_code, r.text, r.headers["Retry-After"]) == (503, "busy", "1")
    assert requests.get(url, timeout=5).status_code == 200
    assert [e.status for e in server.requests(PATH)] == [503, 200]


def test_once_n_applies_to_n_requests(server: DataServer, url: str) -> None:
    server.fault(url, "status", status=500, once=2)  # a full URL works as the key too
    assert [requests.get(url, timeout=5).status_code for _ in range(3)] == [500, 500, 200]


def test_persistent_fault_until_cleared_and_wildcard(server: DataServer, url: str) -> None:
    server.fault("*", "status", status=404)
    assert requests.get(url, timeout=5).status_code == 404
    assert requests.get(url, timeout=5).status_code == 404
    assert requests.head(url, timeout=5).status_code == 404
    server.clear_faults()
    assert requests.get(url, timeout=5).status_code == 200


def test_html_fault_returns_an_error_page_with_200(server: DataServer, url: str) -> None:
    server.fault(PATH.lstrip("/"), "html")
    r = requests.get(url, timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.text.lstrip().startswith("<!DOCTYPE html>")


def test_truncate_once_then_resume_with_range(server: DataServer, url: str,
                                              payload: bytes) -> None:
    server.fault(PATH, "truncate", after=100_000, once=True)
    got = bytearray()
    r = requests.get(url, stream=True, timeout=5)
    assert r.headers["Content-Length"] == str(SIZE)  # the headers promised it all
    etag = r.headers["ETag"]
    with r, pytest.raises(requests.exceptions.ChunkedEncodingError):
        for chunk in r.iter_content(16_384):
            got += chunk
    # the client may drop the last partial chunk it read; it resumes from what it kept
    assert 0 < len(got) <= 100_000 and bytes(got) == payload[:len(got)]
    first = server.requests(PATH)[-1]
    assert (first.status, first.bytes_sent) == (200, 100_000)
    r = requests.get(url, headers={"Range": f"bytes={len(got)}-", "If-Range": etag}, timeout=5)
    assert r.status_code == 206
    assert bytes(got) + r.content == payload
    resumed = server.requests(PATH)[-1]
    assert resumed.headers["Range"] == f"bytes={len(got)}-" and resumed.status == 206
    assert resumed.bytes_sent == SIZE - len(got)


def test_truncate_applies_to_a_range_response_too(server: DataServer, url: str) -> None:
    server.fault(PATH, "truncate", after=10, once=True)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, headers={"Range": "bytes=1000-"}, timeout=5)
    assert server.log[-1].status == 206 and server.log[-1].bytes_sent == 10


def test_head_neither_suffers_nor_consumes_a_body_fault(server: DataServer, url: str) -> None:
    server.fault(PATH, "truncate", after=5, once=True)
    assert requests.head(url, timeout=5).status_code == 200
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=5)


def test_throttle_limits_the_rate(server: DataServer, url: str, payload: bytes) -> None:
    server.fault(PATH, "throttle", rate=1_000_000)
    started = time.monotonic()
    r = requests.get(url, timeout=10)
    took = time.monotonic() - started
    assert r.content == payload
    assert 0.2 <= took < 3  # 300 kB at 1 MB/s
    with pytest.raises(ValueError, match="rate"):
        server.fault(PATH, "throttle")


def test_delay_and_drop(server: DataServer, url: str) -> None:
    server.fault(PATH, "delay", seconds=0.3, once=True)
    started = time.monotonic()
    assert requests.get(url, timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.3
    server.fault(PATH, "drop", once=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, timeout=5)
    assert server.log[-1].status == 0
    assert requests.get(url, timeout=5).status_code == 200


def test_delay_makes_a_client_time_out(server: DataServer, url: str) -> None:
    server.fault(PATH, "delay", seconds=1, once=True)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(url, timeout=0.2)


def test_unknown_fault_kind_is_refused(server: DataServer) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        server.fault(PATH, "explode")


def test_log_can_be_cleared(server: DataServer, url: str) -> None:
    requests.head(url, timeout=5)
    assert server.log
    server.clear_log()
    assert server.log == []


def test_stop_cuts_a_slow_download(tmp_path: Path, payload: bytes) -> None:
    errors: list[BaseException] = []
    with serve(tmp_path / "root") as srv:
        srv.fault(PATH, "throttle", rate=10_000)  # would take 30 s

        def fetch() -> None:
            try:
                requests.get(srv.url + PATH, timeout=10).content  # noqa: B018
            except requests.RequestException as exc:
                errors.append(exc)

        thread = threading.Thread(target=fetch)
        thread.start()
        time.sleep(0.3)
        started = time.monotonic()
    thread.join(timeout=5)
    assert time.monotonic() - started < 3 and not thread.is_alive()
    assert errors  # the client saw the connection go away


# --- the generated files over HTTP -------------------------------------------------------


def test_serves_generated_files_at_mirror_urls(tiny: Manifest) -> None:
    with serve(tiny.root) as srv:
        r = requests.get(tiny.mirror_url(srv.url, GADM_URL), timeout=10)
    assert r.status_code == 200
    assert hashlib.sha256(r.content).hexdigest() == tiny.gadm.sha256
