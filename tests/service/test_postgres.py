"""A worker thread keeps its connection between messages, unless it is unfit to keep."""

import threading

import psycopg
import pytest

from service.postgres import reused


def _pid(conn) -> int:
    return conn.execute("SELECT pg_backend_pid()").fetchone()[0]


def test_a_thread_gets_its_idle_connection_back(settings):
    with reused(settings) as conn:
        first = _pid(conn)
    with reused(settings) as conn:
        assert _pid(conn) == first
    seen = []
    other = threading.Thread(target=lambda: seen.append(_pid_in_thread(settings)))
    other.start()
    other.join()
    assert seen and seen[0] != first  # each thread its own


def _pid_in_thread(settings) -> int:
    with reused(settings) as conn:
        return _pid(conn)


def test_a_connection_left_in_a_transaction_or_after_an_error_is_not_kept(settings):
    with reused(settings) as conn:
        first = _pid(conn)
        conn.execute("BEGIN")
    with reused(settings) as conn:
        second = _pid(conn)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert second != first
    with pytest.raises(RuntimeError), reused(settings) as conn:
        raise RuntimeError("the step failed")
    with reused(settings) as conn:
        assert _pid(conn) != second


def test_a_kept_connection_whose_server_went_away_is_replaced(settings, db):
    with reused(settings) as conn:
        first = _pid(conn)
    db.execute("SELECT pg_terminate_backend(%s)", (first,))
    with reused(settings) as conn:
        assert _pid(conn) != first
