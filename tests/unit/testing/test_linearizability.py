"""The linearizability checker on hand-written and generated key-value histories."""

from __future__ import annotations

import random

import pytest

from swarmlite.errors import InvalidArgument
from swarmlite.testing.linearizability import Operation, check

NEVER_WRITTEN = "never-written"


def write(
    client: int, value: object, invoke: float, response: float | None, *, key: str = "k"
) -> Operation:
    ok = None if response is None else True
    return Operation(client, key, "write", value, None, invoke, response, None, ok)


def read(
    client: int, result: object, invoke: float, response: float | None, *, key: str = "k"
) -> Operation:
    ok = None if response is None else True
    return Operation(client, key, "read", None, None, invoke, response, result, ok)


def cas(
    client: int,
    expected: object,
    value: object,
    invoke: float,
    response: float | None,
    *,
    ok: bool | None = True,
    key: str = "k",
) -> Operation:
    return Operation(client, key, "cas", value, expected, invoke, response, None, ok)


def test_empty_history_is_linearizable() -> None:
    assert check([]).ok


def test_sequential_writes_and_reads() -> None:
    history = [
        read(1, None, 0, 1),
        write(1, "a", 2, 3),
        read(2, "a", 4, 5),
        write(2, "b", 6, 7),
        read(1, "b", 8, 9),
    ]
    result = check(history)
    assert result.ok, result.explanation
    assert not result.undecided


def test_stale_read_after_acknowledged_write_fails() -> None:
    history = [write(1, "a", 0, 1), write(1, "b", 2, 3), read(2, "a", 4, 5)]
    result = check(history)
    assert not result.ok
    assert not result.undecided
    assert result.key == "k"
    # The explanation names the read that cannot be placed.
    assert "#2" in result.explanation
    assert "read 'k' -> 'a'" in result.explanation


def test_lost_acknowledged_write_fails() -> None:
    history = [write(1, "a", 0, 1), read(2, None, 2, 3)]
    result = check(history)
    assert not result.ok and not result.undecided
    assert "holds 'a'" in result.explanation


def test_concurrent_writes_seen_in_both_orders_fail() -> None:
    history = [
        write(1, 1, 0, 10),
        write(2, 2, 0, 10),
        read(3, 1, 11, 12),
        read(4, 2, 13, 14),
    ]
    assert not check(history).ok


def test_concurrent_writes_seen_in_both_orders_while_overlapping_are_fine() -> None:
    # Reads that overlap the writes may see one write before the other takes effect.
    history = [
        write(1, 1, 0, 10),
        write(2, 2, 0, 10),
        read(3, 1, 1, 5),
        read(4, 2, 6, 9),
        read(3, 2, 11, 12),
    ]
    result = check(history)
    assert result.ok, result.explanation


def test_read_overlapping_a_write_may_see_either_value() -> None:
    for seen in ("old", "new"):
        history = [write(1, "old", 0, 1), write(1, "new", 2, 6), read(2, seen, 3, 4)]
        assert check(history).ok, seen


def test_read_cannot_go_back_after_another_read_saw_the_new_value() -> None:
    history = [
        write(1, "old", 0, 1),
        write(1, "new", 2, 10),
        read(2, "new", 3, 4),
        read(3, "old", 5, 6),
    ]
    assert not check(history).ok


def test_equal_times_count_as_concurrent() -> None:
    history = [write(1, "a", 0, 5), read(2, None, 5, 6)]
    assert check(history).ok


@pytest.mark.parametrize("shows_up", [True, False])
def test_unknown_outcome_write_may_or_may_not_take_effect(shows_up: bool) -> None:
    history = [
        write(1, "a", 0, 1),
        write(2, "b", 2, None),
        read(3, "b" if shows_up else "a", 3, 4),
        read(3, "b" if shows_up else "a", 5, 6),
    ]
    result = check(history)
    assert result.ok, result.explanation


def test_unknown_outcome_write_may_take_effect_long_after_its_timeout() -> None:
    history = [
        write(1, "a", 0, 1),
        write(2, "b", 2, None),
        read(3, "a", 10, 11),
        read(3, "b", 20, 21),
    ]
    assert check(history).ok


def test_unknown_outcome_write_cannot_take_effect_before_its_invoke() -> None:
    history = [write(1, "a", 0, 1), read(3, "b", 2, 3), write(2, "b", 4, None)]
    assert not check(history).ok


def test_unknown_write_takes_effect_at_most_once() -> None:
    history = [
        write(1, "a", 0, 1),
        write(2, "b", 2, None),
        read(3, "b", 3, 4),
        write(1, "c", 5, 6),
        read(3, "b", 7, 8),
    ]
    assert not check(history).ok


def test_unknown_outcome_read_constrains_nothing() -> None:
    history = [write(1, "a", 0, 1), read(2, "garbage", 2, None)]
    assert check(history).ok


def test_successful_cas_requires_the_expected_value() -> None:
    good = [write(1, 1, 0, 1), cas(2, 1, 2, 2, 3), read(1, 2, 4, 5)]
    assert check(good).ok
    wrong_expected = [write(1, 1, 0, 1), cas(2, 7, 2, 2, 3)]
    assert not check(wrong_expected).ok


def test_failed_cas_must_have_seen_another_value() -> None:
    mismatched = [write(1, 1, 0, 1), cas(2, 7, 2, 2, 3, ok=False), read(1, 1, 4, 5)]
    assert check(mismatched).ok
    # Nothing could have been different from 1 when the cas ran, so it should have matched.
    should_have_matched = [write(1, 1, 0, 1), cas(2, 1, 2, 2, 3, ok=False)]
    result = check(should_have_matched)
    assert not result.ok
    assert "failed" in result.explanation


def test_failed_cas_changes_nothing() -> None:
    history = [write(1, 1, 0, 1), cas(2, 7, 2, 2, 3, ok=False), read(1, 2, 4, 5)]
    assert not check(history).ok


def test_two_clients_cannot_both_win_the_same_cas() -> None:
    history = [
        write(1, 0, 0, 1),
        cas(1, 0, 1, 2, 5),
        cas(2, 0, 2, 2, 5),
    ]
    assert not check(history).ok


def test_unknown_cas_may_or_may_not_have_applied() -> None:
    applied = [write(1, 0, 0, 1), cas(2, 0, 5, 2, None, ok=None), read(1, 5, 3, 4)]
    assert check(applied).ok
    not_applied = [write(1, 0, 0, 1), cas(2, 0, 5, 2, None, ok=None), read(1, 0, 3, 4)]
    assert check(not_applied).ok
    # Even an unknown cas can only apply when the value matched.
    impossible = [write(1, 1, 0, 1), cas(2, 0, 5, 2, None, ok=None), read(1, 5, 3, 4)]
    assert not check(impossible).ok


def test_failed_write_did_nothing() -> None:
    failed = Operation(2, "k", "write", "b", None, 2, 3, None, False)
    assert check([write(1, "a", 0, 1), failed, read(1, "a", 4, 5)]).ok
    assert not check([write(1, "a", 0, 1), failed, read(1, "b", 4, 5)]).ok


def test_initial_value_is_what_keys_hold_before_any_write() -> None:
    assert check([read(1, 0, 0, 1)], initial=0).ok
    assert not check([read(1, 0, 0, 1)]).ok


def test_keys_are_checked_separately_and_the_failing_key_is_named() -> None:
    history = [
        write(1, "a", 0, 1, key="x"),
        write(2, "a", 0, 1, key="y"),
        read(1, "a", 2, 3, key="x"),
        read(2, None, 2, 3, key="y"),
    ]
    result = check(history)
    assert not result.ok
    assert result.key == "y"
    assert "'y'" in result.explanation


def test_unhashable_values_are_compared_by_equality() -> None:
    history = [write(1, {"a": [1]}, 0, 1), read(2, {"a": [1]}, 2, 3)]
    assert check(history).ok
    assert not check([write(1, {"a": [1]}, 0, 1), read(2, {"a": [2]}, 2, 3)]).ok


def test_malformed_operations_are_rejected() -> None:
    with pytest.raises(InvalidArgument, match="kind"):
        check([Operation(1, "k", "delete", None, None, 0, 1, None, True)])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="before"):
        check([write(1, "a", 5, 1)])


def test_exhausted_budget_is_undecided_never_ok() -> None:
    # Ten concurrent writes, then reads that see two of them in turn: the search must try
    # every order of the writes before it can say no.
    history = [write(c, c, 0, 10) for c in range(10)]
    history += [read(99, 0, 11, 12), read(99, 1, 13, 14)]
    verdict = check(history)
    assert not verdict.ok and not verdict.undecided
    result = check(history, max_steps=100)
    assert not result.ok
    assert result.undecided
    assert "undecided" in result.explanation
    # The same budget is plenty for a sequential history: undecided is about difficulty.
    assert check([write(1, i, i, i + 0.5) for i in range(50)], max_steps=100).ok


def test_read_of_a_value_nobody_wrote_is_reported_at_once() -> None:
    history = [write(1, "a", 0, 1), read(2, NEVER_WRITTEN, 2, 3), write(1, NEVER_WRITTEN, 4, 5)]
    result = check(history, max_steps=1)
    assert not result.ok and not result.undecided
    assert "never held" in result.explanation
    assert "#1 client 2 read" in result.explanation


def test_explanation_shows_the_longest_prefix_and_the_stuck_operations() -> None:
    history = [write(1, i, 2 * i, 2 * i + 1) for i in range(20)]
    history.append(read(2, 3, 50, 51))
    result = check(history)
    assert not result.ok
    text = result.explanation
    assert "places 20 of them" in text
    assert "#19" in text  # the last write of the prefix
    assert "#0 " not in text  # older parts of the prefix are elided
    assert "holds 19" in text
    assert "#20 client 2 read 'k' -> 3" in text


def generate(
    rng: random.Random,
    *,
    clients: int,
    ops: int,
    keys: int = 1,
    values: int | None = None,
    unknown: float = 0.0,
) -> list[Operation]:
    """A history from a real register: each client has one op outstanding at a time.

    Each operation takes effect at a random instant inside its interval; unknown-outcome
    operations take effect (or not) at a random instant after their invoke.
    """
    clock = [rng.uniform(0, 1) for _ in range(clients)]
    planned: list[tuple[float, int, int, str, str, object, object, float, float, bool]] = []
    for n in range(ops):
        client = rng.randrange(clients)
        invoke = clock[client]
        response = invoke + rng.expovariate(1.0)
        clock[client] = response + rng.expovariate(4.0)
        lost = rng.random() < unknown
        at = rng.uniform(invoke, response + (10 if lost else 0))
        kind = rng.choice(["write", "read", "read", "cas"])
        # Unique values (one per operation) unless a small domain is asked for.
        value: object = n + 1 if values is None else rng.randrange(values)
        expected: object = rng.randrange(n + 1) if values is None else rng.randrange(values)
        planned.append(
            (
                at,
                n,
                client,
                rng.choice("abcdefgh"[:keys]),
                kind,
                value,
                expected,
                invoke,
                response,
                lost,
            )
        )
    state: dict[str, object] = {}
    history: list[Operation] = []
    for at, _, client, key, kind, value, expected, invoke, response, lost in sorted(planned):
        del at
        happens = not lost or rng.random() < 0.5
        current = state.get(key)
        result: object = None
        ok = True
        if kind == "write":
            if happens:
                state[key] = value
        elif kind == "read":
            result = current
        else:
            ok = current == expected
            if ok and happens:
                state[key] = value
        history.append(
            Operation(
                client=client,
                key=key,
                kind=kind,  # type: ignore[arg-type]
                value=value,
                expected=expected,
                invoke=invoke,
                response=None if lost else response,
                result=result,
                ok=None if lost else ok,
            )
        )
    history.sort(key=lambda op: op.invoke)
    return history


@pytest.mark.parametrize("seed", range(40))
def test_random_register_histories_pass_and_a_corrupted_read_fails(seed: int) -> None:
    rng = random.Random(seed)
    history = generate(
        rng,
        clients=rng.randint(2, 6),
        ops=rng.randint(20, 200),
        keys=rng.randint(1, 3),
        values=rng.choice([None, 3]),
        unknown=rng.choice([0.0, 0.05]),
    )
    result = check(history)
    assert result.ok, f"seed={seed}\n{result.explanation}"

    reads = [i for i, op in enumerate(history) if op.kind == "read" and op.ok]
    assert reads
    victim = rng.choice(reads)
    old = history[victim]
    history[victim] = Operation(
        old.client, old.key, old.kind, None, None, old.invoke, old.response, NEVER_WRITTEN, True
    )
    corrupted = check(history)
    assert not corrupted.ok, f"seed={seed}"
    assert not corrupted.undecided
    assert corrupted.key == old.key
    assert f"#{victim} " in corrupted.explanation


def test_thousands_of_operations_per_key_are_decided_in_a_linear_number_of_steps() -> None:
    rng = random.Random(7)
    history = generate(rng, clients=5, ops=4000, unknown=0.01)
    # The search decides this history in about 4.4 steps per operation; a blow-up (the
    # cache missing, backtracking without end) runs out of a budget linear in its length,
    # and the verdict is undecided.
    result = check(history, max_steps=25 * len(history))
    assert not result.undecided, result.explanation
    assert result.ok, result.explanation


def brute_force(history: list[Operation], initial: object = None) -> bool:
    """Try every order that respects real time; the slow, obviously right oracle."""

    def effect(op: Operation, state: object) -> tuple[bool, object]:
        if op.kind == "write":
            return True, op.value
        if op.kind == "read":
            return op.result == state, state
        if op.unknown or op.ok:
            return op.expected == state, op.value
        return op.expected != state, state

    # Failed writes and reads that returned nothing never took effect.
    ops = [
        op
        for op in history
        if not (op.ok is False and op.kind != "cas") and not (op.kind == "read" and op.unknown)
    ]

    def search(placed: frozenset[int], state: object) -> bool:
        if all(i in placed for i, op in enumerate(ops) if not op.unknown):
            return True
        for i, op in enumerate(ops):
            if i in placed:
                continue
            blocked = any(
                j not in placed and other.response is not None and other.response < op.invoke
                for j, other in enumerate(ops)
                if not other.unknown
            )
            fits, new = effect(op, state)
            if not blocked and fits and search(placed | {i}, new):
                return True
        return False

    return search(frozenset(), initial)


def random_small_history(rng: random.Random) -> list[Operation]:
    history: list[Operation] = []
    for client in range(rng.randint(1, 6)):
        invoke = rng.uniform(0, 10)
        kind = rng.choice(["write", "read", "cas"])
        response = None if rng.random() < 0.2 else invoke + rng.uniform(0, 5)
        ok = None if response is None else rng.random() < 0.8
        history.append(
            Operation(
                client,
                "k",
                kind,  # type: ignore[arg-type]
                rng.randrange(3),
                rng.choice([None, 0, 1, 2]),
                invoke,
                response,
                rng.choice([None, 0, 1, 2]),
                ok,
            )
        )
    return history


def test_agrees_with_brute_force_on_small_random_histories() -> None:
    rng = random.Random(2024)
    verdicts = {True: 0, False: 0}
    for _ in range(1500):
        history = random_small_history(rng)
        expected = brute_force(history)
        result = check(history)
        assert result.ok == expected, "\n".join(op.describe() for op in history)
        verdicts[expected] += 1
    # Both verdicts were exercised, so the agreement means something.
    assert min(verdicts.values()) > 200, verdicts
