"""The dashboard's address check, token file and URL."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from swarmlite.dashboard.access import (
    TOKEN_FILE,
    check_addr,
    ensure_token,
    forget_addr,
    parse_addr,
    read_addr,
    read_token,
    token_matches,
    url,
    write_addr,
)
from swarmlite.errors import FailedPrecondition, InvalidArgument


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("127.0.0.1:8765", ("127.0.0.1", 8765)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("[::1]:8765", ("::1", 8765)),
        ("localhost:65535", ("localhost", 65535)),
    ],
)
def test_addresses_are_host_and_port(addr: str, expected: tuple[str, int]) -> None:
    assert parse_addr(addr) == expected


@pytest.mark.parametrize(
    ("addr", "words"),
    [
        ("8765", "is not ADDR:PORT"),
        ("127.0.0.1", "is not ADDR:PORT"),
        (":8765", "is not ADDR:PORT"),
        ("127.0.0.1:", "is not ADDR:PORT"),
        ("127.0.0.1:http", "the port must be 1 to 65535"),
        ("127.0.0.1:0", "the port must be 1 to 65535"),
        ("127.0.0.1:70000", "the port must be 1 to 65535"),
        ("::1:8765", "in brackets"),
        ("a/b:8765", "is not a host"),
    ],
)
def test_a_malformed_address_is_refused_in_words(addr: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_addr(addr)
    assert words in caught.value.message
    assert "--dashboard-addr" in caught.value.message


def test_a_held_port_is_refused_before_anything_starts() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        with pytest.raises(FailedPrecondition) as caught:
            check_addr(f"127.0.0.1:{port}")
    assert "already in use" in caught.value.message
    assert "--dashboard-addr" in (caught.value.hint or "")


def test_an_address_this_host_lacks_is_refused() -> None:
    with pytest.raises(FailedPrecondition, match=r"cannot listen on 192\.0\.2\.1:8765"):
        check_addr("192.0.2.1:8765")  # TEST-NET-1: never this host's


def test_the_token_is_made_once_private_and_kept(tmp_path: Path) -> None:
    token = ensure_token(tmp_path)
    path = tmp_path / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(token) >= 40
    assert ensure_token(tmp_path) == token  # the next start keeps it
    assert read_token(tmp_path) == token


def test_a_widened_token_file_is_narrowed_again(tmp_path: Path) -> None:
    token = ensure_token(tmp_path)
    path = tmp_path / TOKEN_FILE
    path.chmod(0o644)
    assert read_token(tmp_path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_no_token_yet_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        read_token(tmp_path)
    assert "--dashboard-addr" in (caught.value.hint or "")


def test_tokens_match_only_exactly() -> None:
    assert token_matches("abc", "abc")
    assert not token_matches("abd", "abc")
    assert not token_matches("", "abc")
    assert not token_matches(None, "abc")


def test_the_url_names_a_reachable_host_and_carries_the_token() -> None:
    assert url("127.0.0.1:8765", "t0k") == "http://127.0.0.1:8765/?token=t0k"
    assert (
        url("0.0.0.0:8765", "a+b", advertise_host="10.1.2.3") == "http://10.1.2.3:8765/?token=a%2Bb"
    )
    assert url("[::1]:8765", "t") == "http://[::1]:8765/?token=t"


def test_the_running_address_is_noted_and_forgotten(tmp_path: Path) -> None:
    assert read_addr(tmp_path) is None
    write_addr(tmp_path, "127.0.0.1:8765")
    assert read_addr(tmp_path) == "127.0.0.1:8765"
    forget_addr(tmp_path)
    forget_addr(tmp_path)  # twice is fine
    assert read_addr(tmp_path) is None
