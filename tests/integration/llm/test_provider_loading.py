"""Provider clients are imported when a configuration is bound, not by the first call."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
from app.engine import ResourceConfig, ResourceManager
config = ResourceConfig.from_dict({"endpoints": {
    "a": {"provider": "anthropic", "model": "m"},
    "b": {"provider": "openai-compatible", "model": "m", "base_url": "http://127.0.0.1:9/v1"}}})
before = "app.llm.providers" in sys.modules
ResourceManager(config)
print(json.dumps([before, "app.llm.providers" in sys.modules, "aiohttp" in sys.modules]))
"""


def test_binding_a_configuration_loads_its_providers() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    before, after, http = json.loads(done.stdout)
    assert not before  # importing the engine does not load them
    assert after
    assert http
