"""Which endpoint aliases the service offers: a YAML file, or offline simulated ones."""

from __future__ import annotations

from app.engine import ResourceConfig
from app.settings import Settings

SIMULATED = {
    "endpoints": {
        "fast": {"provider": "simulated", "model": "sim-fast", "max_concurrent": 256},
        "smart": {"provider": "simulated", "model": "sim-smart", "max_concurrent": 64},
    }
}


def load_endpoints(settings: Settings) -> ResourceConfig:
    """The aliases of ``INF_ENDPOINTS_FILE``, else the simulated ``fast`` and ``smart``."""
    if settings.endpoints_file is None:
        return ResourceConfig.from_dict(SIMULATED)
    return ResourceConfig.from_yaml(settings.endpoints_file)
