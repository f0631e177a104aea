"""When to renew: between 50 % and 80 % of a certificate's lifetime, spread by the rng."""

from __future__ import annotations

import datetime
import random

import pytest

from swarmlite.ca import RootCA, cert_info, issue_node_cert, renewal_delay
from swarmlite.errors import InvalidArgument


@pytest.fixture(scope="module")
def cert_pem() -> bytes:
    ca = RootCA.create("cluster-a")
    return issue_node_cert(ca, "n1", "worker", "cluster-a", expiry_days=90).cert_pem


def test_renewal_falls_between_half_and_four_fifths_of_the_lifetime(cert_pem: bytes) -> None:
    info = cert_info(cert_pem)
    lifetime = (info.not_after - info.not_before).total_seconds()
    now = info.not_before

    fractions = [
        renewal_delay(cert_pem, now=now, rng=random.Random(seed)) / lifetime for seed in range(500)
    ]

    assert all(0.5 <= fraction <= 0.8 for fraction in fractions)
    # spread over the window, not bunched at one point
    assert min(fractions) < 0.53 and max(fractions) > 0.77


def test_the_delay_counts_from_now(cert_pem: bytes) -> None:
    info = cert_info(cert_pem)
    later = info.not_before + datetime.timedelta(days=10)

    at_start = renewal_delay(cert_pem, now=info.not_before, rng=random.Random(7))
    ten_days_on = renewal_delay(cert_pem, now=later, rng=random.Random(7))

    assert at_start - ten_days_on == pytest.approx(10 * 86400)


def test_a_certificate_past_its_renewal_window_renews_at_once(cert_pem: bytes) -> None:
    info = cert_info(cert_pem)
    lifetime = info.not_after - info.not_before

    assert renewal_delay(cert_pem, now=info.not_before + lifetime * 0.81, rng=random.Random(1)) == 0
    assert renewal_delay(cert_pem, now=info.not_after + lifetime, rng=random.Random(1)) == 0


def test_a_naive_now_is_taken_as_utc(cert_pem: bytes) -> None:
    now = cert_info(cert_pem).not_before

    naive = renewal_delay(cert_pem, now=now.replace(tzinfo=None), rng=random.Random(3))

    assert naive == renewal_delay(cert_pem, now=now, rng=random.Random(3))


def test_a_short_certificate_is_not_due_at_once() -> None:
    ca = RootCA.create("cluster-a")
    creds = issue_node_cert(ca, "n1", "worker", "cluster-a", expiry=datetime.timedelta(minutes=2))
    cert = creds.cert_pem
    issued = cert_info(cert).not_after - datetime.timedelta(minutes=2)

    delay = renewal_delay(cert, now=issued, rng=random.Random(0))

    # 50-80 % of 132 s from notBefore, which is 12 s (a tenth) before the issue
    assert 54 <= delay <= 93.6


def test_not_a_certificate_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        renewal_delay(b"nope", now=datetime.datetime.now(datetime.UTC), rng=random.Random(0))
