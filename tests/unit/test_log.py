"""Logging: values cut to length, the daemon's file rotated by size."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from swarmlite import log as swl_log
from swarmlite.log import MAX_VALUE_CHARS, clip, kv


def test_kv_cuts_every_value_to_a_bounded_length() -> None:
    line = kv(host="h" * 8_000_000, peer="10.0.0.1")

    assert len(line) < MAX_VALUE_CHARS + 100
    assert line.endswith("...(8000000 chars) peer=10.0.0.1")


def test_clip_leaves_short_values_alone() -> None:
    assert clip("abc", 5) == "abc"
    assert clip("abcdefgh", 5) == "abcde...(8 chars)"


def test_the_daemon_log_is_rotated_by_size_and_std_streams_follow(tmp_path: Path) -> None:
    path = tmp_path / "swarmlite.log"
    saved = os.dup(1), os.dup(2)
    root = logging.getLogger("swarmlite")
    handlers, level, propagate = root.handlers[:], root.level, root.propagate
    try:
        swl_log.setup_file(path, max_bytes=2_000, backups=2)
        for i in range(200):
            logging.getLogger("swarmlite.test").info("record %d %s", i, "x" * 50)
        os.write(2, b"written to fd 2\n")
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], root.level, root.propagate = handlers, level, propagate
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])

    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["swarmlite.log", "swarmlite.log.1", "swarmlite.log.2"]
    assert all(p.stat().st_size <= 2_100 for p in tmp_path.iterdir())
    assert "written to fd 2" in path.read_text()
