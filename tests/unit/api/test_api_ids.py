import os
import random

from swarmlite.api import is_id, new_id


def test_ids_are_25_lowercase_base36_characters() -> None:
    ids = [new_id() for _ in range(200)]
    assert all(len(i) == 25 and is_id(i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_an_injected_random_gives_repeatable_ids() -> None:
    first = [new_id(random.Random(7)) for _ in range(2)]
    assert first[0] == first[1]
    assert new_id(random.Random(8)) != first[0]


def test_the_largest_random_number_still_fits() -> None:
    class Max(random.Random):
        def getrandbits(self, k: int) -> int:
            return (1 << k) - 1

    assert new_id(Max()) == "f5lxx1zz5pnorynqglhzmsp33"


def test_is_id_rejects_other_shapes() -> None:
    assert not is_id("web")
    assert not is_id("A" * 25)
    assert not is_id("0" * 24)


def test_an_id_is_its_random_number_in_base_36() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        number = random.Random(rng.random()).getrandbits(128)
        assert int(new_id(_Fixed(number)), 36) == number


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    new_id()  # the parent has random bytes read ahead
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, then gone
        os.write(write, new_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    assert is_id(child)
    assert child != new_id()


class _Fixed(random.Random):
    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number

    def getrandbits(self, k: int) -> int:
        return self.number
