"""Worker middleware: installed on the broker every worker process uses."""

import json
import subprocess
import sys
import time
from dataclasses import replace


def test_every_worker_gives_memory_back_after_each_message():
    """Checked in a process of its own: importing ``actors`` sets the global broker."""
    check = ("from actors import broker; from actors.middleware import GiveBackMemory; "
             "print(sum(isinstance(m, GiveBackMemory) for m in broker.middleware))")
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split()[-1] == "1"


def test_a_time_limit_failure_names_the_limit_and_the_step(settings):
    """A real TimeLimit stops a real worker's message; the error FailureRecorder sends on
    (what geoload.loads.error will say) used to be empty: TimeLimitExceeded has no text."""
    import dramatiq
    import pika
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    from actors.middleware import FailureRecorder
    from service.broker import amqp_url

    work, failures = f"{settings.queue}-slow", f"{settings.queue}-failures"
    broker = RabbitmqBroker(url=amqp_url(settings.broker_url))
    broker.add_middleware(FailureRecorder(replace(settings, queue=failures)),
                          before=dramatiq.middleware.Retries)
    broker.declare_queue(failures, ensure=True)

    def slow_step(run_id: str, dataset: str) -> None:
        for _ in range(300):  # the limit interrupts Python code, not one long C call
            time.sleep(0.1)

    actor = dramatiq.actor(slow_step, broker=broker, actor_name="load_chunk", queue_name=work,
                           time_limit=1500, max_retries=0)
    broker.emit_after("process_boot")  # starts TimeLimit's timer, as the dramatiq CLI does
    worker = dramatiq.Worker(broker, queues={work}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        actor.send("run-1", "gadm")
        body = _next_message(settings, failures, timeout=30)
    finally:
        worker.stop()
        with pika.BlockingConnection(pika.URLParameters(settings.broker_url)) as connection:
            for queue in (work, f"{work}.DQ", f"{work}.XQ", failures, f"{failures}.DQ",
                          f"{failures}.XQ"):
                connection.channel().queue_delete(queue)
        broker.close()
    actor_name, args, error_type, error, _worker, attempts = body["args"]
    assert (body["actor_name"], actor_name, args, attempts) == (
        "record_failure", "load_chunk", ["run-1", "gadm"], 1)
    assert error_type == "TimeLimitExceeded"
    assert error == "load_chunk ran past its time limit of 1.5 s and was stopped"


def _next_message(settings, queue: str, timeout: float) -> dict:
    import pika

    deadline = time.monotonic() + timeout
    with pika.BlockingConnection(pika.URLParameters(settings.broker_url)) as connection:
        channel = connection.channel()
        while time.monotonic() < deadline:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is not None:
                return json.loads(body)
            time.sleep(0.2)
    raise TimeoutError(f"nothing arrived on {queue} within {timeout} s")
