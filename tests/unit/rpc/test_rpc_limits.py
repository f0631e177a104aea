"""The cluster port's bookkeepers: connection caps, rate limits, throttled warnings."""

from __future__ import annotations

from swarmlite.rpc.limits import ConnectionTable, Limits, LogThrottle, RateLimiter
from swarmlite.testing.clock import FakeClock


def test_connections_are_capped_per_address_and_in_all() -> None:
    table = ConnectionTable(total=3, per_address=2)

    assert table.admit("10.0.0.1") is None
    assert table.admit("10.0.0.1") is None
    assert "one address" in (table.admit("10.0.0.1") or "")
    assert table.admit("10.0.0.2") is None
    assert "the most this port takes" in (table.admit("10.0.0.3") or "")
    assert table.total == 3


def test_released_connections_leave_no_entry_behind() -> None:
    table = ConnectionTable(total=10, per_address=10)
    for _ in range(5):
        table.admit("10.0.0.1")
    for _ in range(6):  # one release too many is ignored
        table.release("10.0.0.1")

    assert (table.total, len(table), table.held("10.0.0.1")) == (0, 0, 0)


def test_a_wave_of_connections_that_ended_is_due_for_reclaiming_once() -> None:
    table = ConnectionTable(total=1000, per_address=1000)
    for _ in range(100):
        table.admit("10.0.0.1")
    assert not table.reclaim_due()
    for _ in range(90):
        table.release("10.0.0.1")

    assert table.reclaim_due()
    assert not table.reclaim_due()


def test_the_connection_cap_leaves_descriptors_for_the_rest() -> None:
    assert 16 <= Limits(max_connections=10**9).connection_cap() < 10**9


def test_a_rate_limiter_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)

    assert [limiter.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b")  # each address has its own bucket
    assert limiter.retry_after("a") == 0.5
    clock.advance(0.5)
    assert limiter.allow("a")
    assert not limiter.allow("a")


def test_a_rate_limiter_forgets_addresses_whose_bucket_filled_again() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock, max_entries=100)
    for i in range(50):
        limiter.allow(f"10.0.0.{i}")
    assert len(limiter) == 50
    clock.advance(3)
    limiter.allow("10.0.1.1")

    assert len(limiter) == 1


def test_a_rate_limiter_holds_at_most_max_entries() -> None:
    limiter = RateLimiter(rate=1.0, burst=2, clock=FakeClock(), max_entries=10)
    for i in range(1000):
        limiter.allow(f"a{i}")

    assert len(limiter) == 10


def test_a_log_throttle_lets_one_record_a_minute_through_and_counts_the_rest() -> None:
    clock = FakeClock()
    throttle = LogThrottle(60.0, clock=clock)

    assert throttle.admit("10.0.0.1 refused") == 0
    assert [throttle.admit("10.0.0.1 refused") for _ in range(5)] == [None] * 5
    assert throttle.admit("10.0.0.2 refused") == 0
    clock.advance(60)
    assert throttle.admit("10.0.0.1 refused") == 5
    assert throttle.admit("10.0.0.1 refused") is None


def test_a_log_throttle_forgets_quiet_keys() -> None:
    clock = FakeClock()
    throttle = LogThrottle(60.0, clock=clock, max_entries=1000)
    for i in range(100):
        throttle.admit(f"k{i}")
    clock.advance(61)
    throttle.admit("other")

    assert len(throttle) == 1
