"""Decide whether a key-value history is linearizable, and explain why not when it is not.

Owns the history model (`Operation`), the verdict (`CheckResult`) and the search: the
history is split by key (linearizability is compositional, so each key's register can be
checked alone) and each key is checked with the Wing & Gong algorithm as improved by Lowe:
a depth-first search over "which pending operation takes effect next", with a cache of
(set of operations already placed, register value) so that no state is explored twice.
Does not own the store or the simulator that produced the history; it only judges it.

Invariants: a history is reported linearizable only when an order was found that respects
real time and explains every acknowledged outcome; when the search runs out of its step
budget the verdict is "undecided", never "ok".

Semantics of one operation on a key:

- ``write``: the key now holds ``value``.
- ``cas``: if the key holds ``expected`` it now holds ``value`` (``ok=True``); a definite
  failure (``ok=False``) changed nothing but must have seen a value other than ``expected``.
- ``read``: returned ``result`` (None for a missing key).
- An outcome is unknown when ``response`` or ``ok`` is None (timed out, leader lost): a write
  or cas may or may not have taken effect, at any time after ``invoke``; an unknown read says
  nothing. A failed write or read (``ok=False``) did nothing.

Operations whose response time equals another's invoke time count as concurrent, so that
clock granularity never produces a false alarm.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from swarmlite.errors import InvalidArgument
from swarmlite.log import kv

log = logging.getLogger(__name__)

Kind = Literal["write", "read", "cas"]

DEFAULT_MAX_STEPS = 2_000_000
"""Search steps allowed per key before the verdict is "undecided"."""

_SHOWN_PREFIX = 8  # how many operations of the longest linearizable prefix an explanation shows


@dataclass(frozen=True, slots=True)
class Operation:
    """One client operation on one key, as the client saw it."""

    client: int
    key: str
    kind: Kind
    value: object  # the value written (write, cas); unused by reads
    expected: object  # what a cas compares with; unused by writes and reads
    invoke: float
    response: float | None = None  # None: the outcome is unknown
    result: object = None  # what a read returned (None for a missing key)
    ok: bool | None = None  # None: the outcome is unknown

    @property
    def unknown(self) -> bool:
        return self.response is None or self.ok is None

    def describe(self) -> str:
        """A one-line human rendering, e.g. ``client 2 cas 'k' 1 -> 2 [1.0, 2.5] failed``."""
        if self.kind == "read":
            what = f"read {self.key!r}" + ("" if self.unknown else f" -> {self.result!r}")
        elif self.kind == "cas":
            what = f"cas {self.key!r} {self.expected!r} -> {self.value!r}"
        else:
            what = f"write {self.key!r} := {self.value!r}"
        end = "?" if self.response is None else f"{self.response:g}"
        outcome = "unknown" if self.unknown else ("ok" if self.ok else "failed")
        return f"client {self.client} {what} [{self.invoke:g}, {end}] {outcome}"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The verdict: ``ok`` only when linearizable; ``undecided`` when the budget ran out."""

    ok: bool
    key: str | None
    explanation: str
    undecided: bool = False


def check(
    history: Sequence[Operation],
    *,
    initial: object = None,
    max_steps: int = DEFAULT_MAX_STEPS,
) -> CheckResult:
    """Check ``history`` (every key starts as ``initial``) and return the verdict.

    The first key found not linearizable decides the result; otherwise a key whose search
    exceeded ``max_steps`` makes the result undecided. Raises InvalidArgument for a malformed
    operation (unknown kind, response before invoke).
    """
    by_key: dict[str, list[tuple[int, Operation]]] = {}
    for index, op in enumerate(history):
        _validate(index, op)
        by_key.setdefault(op.key, []).append((index, op))
    undecided: CheckResult | None = None
    for key, ops in by_key.items():
        result = _check_key(key, ops, initial, max_steps)
        if result.ok:
            continue
        if not result.undecided:
            return result
        if undecided is None:
            undecided = result
    if undecided is not None:
        return undecided
    return CheckResult(
        ok=True,
        key=None,
        explanation=f"linearizable: {len(history)} operations on {len(by_key)} keys",
    )


def _validate(index: int, op: Operation) -> None:
    if op.kind not in ("write", "read", "cas"):
        raise InvalidArgument(
            f"operation #{index} has kind {op.kind!r}; expected 'write', 'read' or 'cas'"
        )
    if op.response is not None and op.response < op.invoke:
        raise InvalidArgument(
            f"operation #{index} responds at {op.response} before it was invoked at {op.invoke}"
        )


class _Values:
    """Numbers the distinct values of one key by equality, so the search compares ints.

    Values need not be hashable: unhashable ones are compared with == one by one.
    """

    def __init__(self) -> None:
        self._hashable: dict[object, int] = {}
        self._other: list[tuple[object, int]] = []
        self.values: list[object] = []

    def id(self, value: object) -> int:
        try:
            found = self._hashable.get(value)
        except TypeError:  # unhashable: compare by equality, one by one
            for candidate, number in self._other:
                if candidate == value:
                    return number
            found = self._new(value)
            self._other.append((value, found))
            return found
        if found is None:
            found = self._hashable[value] = self._new(value)
        return found

    def _new(self, value: object) -> int:
        self.values.append(value)
        return len(self.values) - 1


# How a compiled operation acts on the register, given its operands a and b (value ids).
_WRITE = 0  # state := a
_READ = 1  # requires state == a
_CAS = 2  # requires state == a; state := b
_CAS_FAILED = 3  # requires state != a
_UNCHANGING = (_READ, _CAS_FAILED)
_NO_GUARD = -1


@dataclass(frozen=True, slots=True)
class _Compiled:
    index: int  # position in the caller's history
    op: Operation
    code: int
    a: int
    b: int
    required: bool  # False: the outcome is unknown, so it may never have taken effect


class _Entry:
    """A call or return event in the doubly linked event list the search lifts entries from."""

    __slots__ = ("call", "match", "next", "number", "prev")

    def __init__(self, number: int, call: bool) -> None:
        self.number = number  # index into the key's compiled operations
        self.call = call
        self.match: _Entry | None = None  # a call's return entry; None when optional
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


# One frame of the search stack, as an immutable cons cell so a snapshot costs nothing:
# (the call entry placed, the register value before it, the frame below, depth, the guard
# before it).
_Frame = tuple[_Entry, int, "_Frame | None", int, int]


def _compile(
    ops: list[tuple[int, Operation]], initial: object
) -> tuple[list[_Compiled], _Values, int]:
    values = _Values()
    start = values.id(initial)
    compiled: list[_Compiled] = []
    for index, op in ops:
        unknown = op.unknown
        if op.kind == "read":
            if unknown or not op.ok:
                continue  # a read that returned nothing constrains nothing
            compiled.append(_Compiled(index, op, _READ, values.id(op.result), 0, True))
        elif op.kind == "write":
            if op.ok is False:
                continue  # a definite failure did nothing
            compiled.append(_Compiled(index, op, _WRITE, values.id(op.value), 0, not unknown))
        elif unknown or op.ok:
            a, b = values.id(op.expected), values.id(op.value)
            compiled.append(_Compiled(index, op, _CAS, a, b, not unknown))
        else:
            compiled.append(_Compiled(index, op, _CAS_FAILED, values.id(op.expected), 0, True))
    return _drop_useless(compiled), values, start


def _drop_useless(compiled: list[_Compiled]) -> list[_Compiled]:
    """Leave out unknown-outcome operations that nothing after their invoke could observe.

    Such an operation may be assumed never to have taken effect (reduction 3 of `_Search`
    only places it right before an operation that needs it). Leaving it out keeps it from
    lingering among the candidates for the rest of the history.
    """
    # For each value, the latest response of an operation that needs the register to hold it
    # (a read, a cas) or to hold anything else (a failed cas); unknown outcomes never end.
    needs: dict[int, float] = {}
    needs_other: dict[int, float] = {}
    for x in compiled:
        end = x.op.response if x.required and x.op.response is not None else math.inf
        if x.code in (_READ, _CAS):
            needs[x.a] = max(end, needs.get(x.a, -math.inf))
        elif x.code == _CAS_FAILED:
            needs_other[x.a] = max(end, needs_other.get(x.a, -math.inf))

    def useful(c: _Compiled) -> bool:
        new = c.a if c.code == _WRITE else c.b
        if needs.get(new, -math.inf) >= c.op.invoke:
            return True
        return any(end >= c.op.invoke for e, end in needs_other.items() if e != new)

    return [c for c in compiled if c.required or useful(c)]


def _impossible_value(compiled: list[_Compiled], start: int) -> _Compiled | None:
    """A read or cas that saw a value no operation invoked before its response produced."""
    produced: list[tuple[float, int]] = sorted(
        (c.op.invoke, c.a if c.code == _WRITE else c.b)
        for c in compiled
        if c.code in (_WRITE, _CAS)
    )
    first: dict[int, float] = {}
    for invoke, value in produced:
        first.setdefault(value, invoke)
    for c in compiled:
        if c.required and c.code in (_READ, _CAS) and c.a != start:
            assert c.op.response is not None
            if first.get(c.a, math.inf) > c.op.response:
                return c
    return None


def _check_key(
    key: str, ops: list[tuple[int, Operation]], initial: object, max_steps: int
) -> CheckResult:
    compiled, values, start = _compile(ops, initial)
    bad = _impossible_value(compiled, start)
    if bad is not None:
        seen = bad.op.result if bad.code == _READ else bad.op.expected
        return CheckResult(
            ok=False,
            key=key,
            explanation=(
                f"key {key!r} is not linearizable: #{bad.index} {bad.op.describe()} saw "
                f"{seen!r}, which {key!r} never held: no write invoked before it returned "
                f"wrote that value and it is not the initial value {values.values[start]!r}."
            ),
        )
    search = _Search(compiled, start)
    verdict = search.run(max_steps)
    if verdict is None:
        log.debug("linearizability search gave up %s", kv(key=key, steps=max_steps))
        return CheckResult(
            ok=False,
            key=key,
            undecided=True,
            explanation=(
                f"undecided: the search for key {key!r} ({len(compiled)} operations) "
                f"stopped after {max_steps} steps without a verdict; raise max_steps "
                f"or check a shorter history"
            ),
        )
    if not verdict:
        assert search.best is not None
        return _violation(key, compiled, values, search.best)
    log.debug("linearizable %s", kv(key=key, operations=len(compiled), steps=search.steps))
    return CheckResult(ok=True, key=key, explanation=f"key {key!r} is linearizable")


def _effect(c: _Compiled, state: int) -> tuple[bool, int]:
    """Whether ``c`` can take effect when the register holds ``state``, and the value after."""
    if c.code == _WRITE:
        return True, c.a
    if c.code == _READ:
        return state == c.a, state
    if c.code == _CAS:
        return state == c.a, c.b
    return state != c.a, state


class _Search:
    """Lowe's depth-first search over one key's operations, with three reductions.

    1. The cache holds every configuration reached: one met again was already explored
       without success (it cannot be on the current path, whose placed sets only grow).
    2. An operation that leaves the value unchanged (a read, a failed cas) and fits now is
       placed at once: any valid order placing it later stays valid with it moved first. So
       such operations are tried first, and when one leads nowhere, so does the
       configuration it was placed from.
    3. An unknown-outcome operation is placed only right before an operation that would not
       fit without it (the guard is the value before it): in any valid order it can be
       dropped, or swapped with the next operation, until that holds. Without this rule,
       every lingering unknown operation would double the configurations to explore.

    Reductions 2 and 3 hold together: moving an operation of 2 to the front and then
    restoring 3 behind it keeps both. The cache key includes the guard.
    """

    def __init__(self, compiled: list[_Compiled], start: int) -> None:
        self.compiled = compiled
        # Events in time order; at equal times calls come first (see the module docstring).
        events: list[tuple[float, int, int]] = []
        for number, c in enumerate(compiled):
            events.append((c.op.invoke, 0, number))
            if c.required:
                assert c.op.response is not None
                events.append((c.op.response, 1, number))
        events.sort()
        self.head = _Entry(-1, call=False)
        calls: dict[int, _Entry] = {}
        tail = self.head
        for _, kind, number in events:
            entry = _Entry(number, call=kind == 0)
            if entry.call:
                calls[number] = entry
            else:
                calls[number].match = entry
            entry.prev, tail.next = tail, entry
            tail = entry

        self.remaining = sum(1 for c in compiled if c.required)
        self.state = start
        self.guard = _NO_GUARD  # the next operation must not fit this value (reduction 3)
        self.placed = 0  # bitmask of the operations placed so far
        self.stack: _Frame | None = None
        self.resume: _Entry | None = None  # where the scan goes on after a backtrack
        self.cache: set[tuple[int, int, int]] = set()
        self.steps = 0
        # The deepest dead end: its stack, the value there, the candidates, the one due.
        self.best: tuple[_Frame | None, int, list[int], int] | None = None

    def run(self, max_steps: int) -> bool | None:
        """True: linearizable; False: not; None: gave up after ``max_steps``."""
        cursor = self.head.next
        fresh = True  # a configuration not yet searched for an unchanging operation
        while self.remaining:
            self.steps += 1
            if self.steps > max_steps:
                return None
            if fresh:
                fresh = False
                observer = self._fitting_observer()
                if observer is not None:
                    if self._place(observer, self.state):
                        fresh, cursor = True, self.head.next
                        continue
                    # Explored before without success, so this configuration is dead.
                    if not self._backtrack():
                        return False
                    cursor = self.resume
                    continue
            if cursor is not None and cursor.call:
                new = self._fits(self.compiled[cursor.number])
                if new is not None and cursor.match is None and not self._useful(new):
                    new = None
                if new is not None and self._place(cursor, new):
                    fresh, cursor = True, self.head.next
                else:
                    cursor = cursor.next
                continue
            # Blocked: the earliest outstanding response is due and nothing more fits first.
            depth = -1 if self.stack is None else self.stack[3]
            if self.best is None or depth > (-1 if self.best[0] is None else self.best[0][3]):
                due = -1 if cursor is None else cursor.number
                self.best = (self.stack, self.state, _pending(self.head, cursor), due)
            if not self._backtrack():
                return False
            cursor = self.resume
        return True

    def _fits(self, c: _Compiled) -> int | None:
        """The value after ``c`` if it may come next, else None."""
        fits, new = _effect(c, self.state)
        if not fits or (self.guard != _NO_GUARD and _effect(c, self.guard)[0]):
            return None
        return new

    def _useful(self, new: int) -> bool:
        """Whether setting the value to ``new`` lets some candidate fit (reduction 3)."""
        entry = self.head.next
        while entry is not None and entry.call:
            c = self.compiled[entry.number]
            if c.code in (_READ, _CAS):
                if c.a == new and c.a != self.state:
                    return True
            elif c.code == _CAS_FAILED and c.a == self.state and new != c.a:
                return True
            entry = entry.next
        return False

    def _fitting_observer(self) -> _Entry | None:
        """A candidate that may come next and leaves the value unchanged, if there is one."""
        entry = self.head.next
        while entry is not None and entry.call:
            c = self.compiled[entry.number]
            if c.code in _UNCHANGING and self._fits(c) is not None:
                return entry
            entry = entry.next
        return None

    def _place(self, entry: _Entry, new: int) -> bool:
        """Place ``entry`` next unless that configuration was explored already."""
        guard = _NO_GUARD if entry.match is not None else self.state
        seen = (self.placed | (1 << entry.number), new, guard)
        if seen in self.cache:
            return False
        self.cache.add(seen)
        depth = 0 if self.stack is None else self.stack[3] + 1
        self.stack = (entry, self.state, self.stack, depth, self.guard)
        self.state, self.placed, self.guard = new, seen[0], guard
        if entry.match is not None:
            self.remaining -= 1
        _lift(entry)
        return True

    def _backtrack(self) -> bool:
        """Undo placements up to and including the last one that was a free choice.

        Sets ``resume`` to where the scan goes on; False when nothing is left to undo.
        """
        while self.stack is not None:
            top, self.state, self.stack, _, self.guard = self.stack
            self.placed &= ~(1 << top.number)
            if top.match is not None:
                self.remaining += 1
            _unlift(top)
            if self.compiled[top.number].code not in _UNCHANGING:
                self.resume = top.next
                return True
        return False


def _lift(entry: _Entry) -> None:
    """Remove a call entry and its return entry from the list, keeping their own links."""
    assert entry.prev is not None
    entry.prev.next = entry.next
    if entry.next is not None:
        entry.next.prev = entry.prev
    match = entry.match
    if match is not None:
        assert match.prev is not None
        match.prev.next = match.next
        if match.next is not None:
            match.next.prev = match.prev


def _unlift(entry: _Entry) -> None:
    """Undo `_lift`, in reverse order, so the links it kept put both entries back."""
    match = entry.match
    if match is not None:
        assert match.prev is not None
        match.prev.next = match
        if match.next is not None:
            match.next.prev = match
    assert entry.prev is not None
    entry.prev.next = entry
    if entry.next is not None:
        entry.next.prev = entry


def _pending(head: _Entry, stop: _Entry | None) -> list[int]:
    """The operations whose calls come before ``stop``: the candidates for the next place."""
    found: list[int] = []
    entry = head.next
    while entry is not None and entry is not stop:
        if entry.call:
            found.append(entry.number)
        entry = entry.next
    return found


def _violation(
    key: str,
    compiled: list[_Compiled],
    values: _Values,
    best: tuple[_Frame | None, int, list[int], int],
) -> CheckResult:
    frame, state, pending, due = best
    prefix: list[int] = []
    while frame is not None:
        prefix.append(frame[0].number)
        frame = frame[2]
    prefix.reverse()

    def line(number: int) -> str:
        c = compiled[number]
        return f"  #{c.index} {c.op.describe()}"

    lines = [
        f"key {key!r} is not linearizable: no order of its {len(compiled)} operations that "
        f"respects real time explains what the clients saw.",
        f"The longest linearizable prefix places {len(prefix)} of them"
        + (f" (the last {_SHOWN_PREFIX} shown):" if len(prefix) > _SHOWN_PREFIX else ":"),
    ]
    lines += [line(n) for n in prefix[-_SHOWN_PREFIX:]] or ["  (none)"]
    lines.append(f"after which {key!r} holds {values.values[state]!r}.")
    lines.append(
        "None of these operations can come next (each contradicts that value or leads "
        "to a dead end):"
    )
    for number in pending:
        mark = "  <- must take effect before it returned" if number == due else ""
        lines.append(line(number) + mark)
    log.debug("not linearizable %s", kv(key=key, operations=len(compiled), placed=len(prefix)))
    return CheckResult(ok=False, key=key, explanation="\n".join(lines))
