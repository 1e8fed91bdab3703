"""Webhook signatures cover the delivery id, the timestamp and the body, and are accepted only
within 60 s after signing and 5 s before (a receiver's clock may run a little behind)."""

from __future__ import annotations

from app.signing import sign, signature_header, verify

SECRET = "whsec_test"
BODY = b'{"type": "job.completed", "job": {"id": "j1"}}'
SIGNED_AT = 1_767_225_600


def header(delivery_id: str = "j1", at: int = SIGNED_AT) -> str:
    return signature_header(SECRET, delivery_id, BODY, timestamp=at)


def test_a_fresh_signature_verifies() -> None:
    assert verify(SECRET, "j1", BODY, header(), now=SIGNED_AT + 30)


def test_the_signed_string_is_delivery_id_timestamp_and_body() -> None:
    expected = sign(SECRET, "j1", SIGNED_AT, BODY)
    assert header() == f"t={SIGNED_AT},v1={expected}"
    assert sign(SECRET, "j2", SIGNED_AT, BODY) != expected


def test_a_replayed_old_signature_is_refused() -> None:
    assert verify(SECRET, "j1", BODY, header(), now=SIGNED_AT + 60)
    assert not verify(SECRET, "j1", BODY, header(), now=SIGNED_AT + 61)
    assert not verify(SECRET, "j1", BODY, header(), now=SIGNED_AT + 299)


def test_a_signature_from_the_future_is_refused() -> None:
    assert verify(SECRET, "j1", BODY, header(), now=SIGNED_AT - 5)
    assert not verify(SECRET, "j1", BODY, header(), now=SIGNED_AT - 6)
    assert not verify(SECRET, "j1", BODY, header(), now=SIGNED_AT - 299)


def test_a_changed_delivery_id_is_refused() -> None:
    assert not verify(SECRET, "j2", BODY, header("j1"), now=SIGNED_AT)


def test_the_windows_are_parameters() -> None:
    assert verify(SECRET, "j1", BODY, header(), max_age_s=600, now=SIGNED_AT + 500)
    assert verify(SECRET, "j1", BODY, header(), max_future_s=60, now=SIGNED_AT - 30)


def test_malformed_headers_are_refused() -> None:
    for value in ("", "t=,v1=", f"t={SIGNED_AT}", "v1=abc", f"t=-{SIGNED_AT},v1=abc"):
        assert not verify(SECRET, "j1", BODY, value, now=SIGNED_AT)
