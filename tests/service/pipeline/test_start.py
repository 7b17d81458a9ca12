"""start and retry: a retry starts what the retried run asked for, strictness included."""

from __future__ import annotations

import psycopg

from service.ledger import runs
from service.pipeline.broker import make_broker
from service.pipeline.start import retry
from tests.conftest import purge_queue


def test_a_retry_of_a_strict_run_is_strict(clean_db):
    broker = make_broker(clean_db)
    try:
        with psycopg.connect(clean_db.database_url, autocommit=True) as db:
            strict = runs.create(db, ["timezone"], {}, strict=True)
            lenient = runs.create(db, ["timezone"], {})
            db.execute("UPDATE geoload.loads SET status = 'failed', finished_at = now()")
            again = retry(clean_db, db, broker, strict)
            plain = retry(clean_db, db, broker, lenient)
            flags = dict(db.execute("SELECT run_id, strict FROM geoload.loads "
                                    "WHERE run_id = ANY(%s)",
                                    ([again.run_id, plain.run_id],)).fetchall())
    finally:
        broker.close()
        purge_queue(clean_db)  # no worker here: the sent messages are dropped
    assert flags == {again.run_id: True, plain.run_id: False}
