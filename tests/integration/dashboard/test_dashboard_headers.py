"""Every dashboard page, error pages too, carries the CSP and anti-framing headers."""

from __future__ import annotations

from tests.integration.dashboard.test_dashboard_queries import quiet  # noqa: F401
from tests.support.service import Service


async def test_dashboard_pages_carry_the_security_headers(quiet: Service) -> None:  # noqa: F811
    for path in ("/ui/jobs", "/ui/jobs/nope", "/ui/login"):
        answer = await quiet.client.get(path)
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self';" in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert answer.headers["x-frame-options"] == "DENY", path
        assert answer.headers["x-content-type-options"] == "nosniff", path
