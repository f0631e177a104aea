"""The CPU bitmaps that receive packet steering reads and writes in sysfs."""

from __future__ import annotations

import pytest

from swarmlite.network.rps import cpu_mask, mask_cpus


@pytest.mark.parametrize(
    ("cpus", "mask"),
    [
        ({0}, "00000001"),
        ({0, 1}, "00000003"),
        (set(range(32)), "ffffffff"),
        ({0, 33}, "00000002,00000001"),
        ({64}, "00000001,00000000,00000000"),
        (set(), "00000000"),
    ],
)
def test_cpus_and_masks_convert_both_ways(cpus: set[int], mask: str) -> None:
    assert cpu_mask(cpus) == mask
    assert mask_cpus(mask) == cpus


def test_sysfs_output_with_newline_and_short_words_reads() -> None:
    assert mask_cpus("3\n") == {0, 1}
    assert mask_cpus("1,00000000\n") == {32}


def test_garbage_is_refused_with_what_was_read() -> None:
    with pytest.raises(ValueError, match="not a CPU bitmap: 'zz'"):
        mask_cpus("zz")
    with pytest.raises(ValueError, match="bad CPU number -1"):
        cpu_mask([-1])
