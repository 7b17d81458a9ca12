import time

from service.throttle import Every


def test_due_at_first_then_at_most_once_per_interval():
    every = Every(0.2)
    started = time.monotonic()
    answers = []
    while time.monotonic() - started < 0.5:
        answers.append(every.due())
        time.sleep(0.01)
    assert answers[0] is True
    assert 2 <= answers.count(True) <= 3   # at 0, ~0.2 and ~0.4 s
    assert len(answers) > 20
