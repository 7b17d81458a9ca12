"""The per-process budget of chunk weight, and the order chunks are sent in to use it."""

import threading
import time

from service.load.budget import Budget, send_order


def test_a_chunk_waits_until_its_weight_fits_and_a_huge_one_runs_alone():
    budget, events = Budget(10), []

    def run(name: str, weight: int, hold: float) -> None:
        with budget.hold(weight):
            events.append(("start", name, budget.in_flight))
            time.sleep(hold)
            events.append(("end", name, budget.in_flight))

    big = threading.Thread(target=run, args=("huge", 50, 0.2))
    big.start()
    time.sleep(0.05)
    small = threading.Thread(target=run, args=("small", 3, 0.0))
    small.start()
    big.join()
    small.join()
    assert [e[:2] for e in events] == [("start", "huge"), ("end", "huge"),
                                       ("start", "small"), ("end", "small")]
    assert max(e[2] for e in events) <= 10 and budget.in_flight == 0


def test_light_chunks_are_sent_beside_a_heavy_one_that_blocks_the_next():
    weights = {"giant": 65, "big": 32, **{f"light{i}": w for i, w in
                                          enumerate([15, 14, 13, 12, 12, 11, 10, 6, 4])}}
    order = send_order(weights, capacity=80)
    assert order[0] == "giant"
    beside = order[1:order.index("big")]
    # What follows the giant fits beside it and weighs about as much; then the rest, heaviest first.
    assert beside and all(weights[k] <= 80 - 65 for k in beside)
    assert sum(weights[k] for k in beside) >= 65
    rest = order[order.index("big"):]
    assert [weights[k] for k in rest] == sorted((weights[k] for k in rest), reverse=True)
    assert sorted(order) == sorted(weights)


def test_chunks_that_share_the_budget_go_heaviest_first():
    weights = {"a": 10, "b": 30, "c": 20}
    assert send_order(weights, capacity=100) == ["b", "c", "a"]
