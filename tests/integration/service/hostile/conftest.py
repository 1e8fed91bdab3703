"""The hostile-input suite's service: small limits, so that going over them is cheap."""

from __future__ import annotations

import pytest

from app.settings import Settings
from tests.support.hostile import Baseline, seed
from tests.support.service import Service


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_request_bytes": 2_000_000, "max_json_bytes": 1_000_000})


@pytest.fixture
async def baseline(service: Service) -> Baseline:
    """The echo graph and one finished job, read back before the case."""
    return await seed(service)
