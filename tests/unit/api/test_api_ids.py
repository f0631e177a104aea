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
