"""``redacted_url``: what ``GET /v1/endpoints`` shows of a configured base URL."""

from __future__ import annotations

import pytest

from app.services.endpoints import redacted_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:s3cret@host/v1?api-key=tok&x=1", "https://***@host/v1?api-key=***&x=***"),
        ("https://token-as-user@host/v1", "https://***@host/v1"),
        ("https://host/v1?s3cret", "https://host/v1?***"),
        ("https://host/v1#s3cret", "https://host/v1"),
        ("http://[::1]:9000/v1?key=s3cret", "http://[::1]:9000/v1?key=***"),
        ("http://127.0.0.1:9000/v1", "http://127.0.0.1:9000/v1"),
    ],
)
def test_credentials_are_hidden_and_the_address_kept(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


def test_an_unparsable_url_is_hidden_whole() -> None:
    assert redacted_url("http://user:s3cret@host:99999999/") == "***"
