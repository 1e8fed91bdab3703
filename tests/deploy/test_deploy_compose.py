"""docker-compose.yml: valid against the Compose Specification schema (the copy that
check-jsonschema ships, offline), and every file, port and name it refers to lines up: the
mounted files exist, Prometheus scrapes the service, Grafana finds its provisioning."""

from __future__ import annotations

import copy
import functools
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
from check_jsonschema.builtin_schemas import get_builtin_schema

from app.engine.resources.config import ResourceConfig
from app.settings import Settings
from tests.deploy.files import (
    COMPOSE,
    DASHBOARD,
    GRAFANA_DASHBOARD_PROVIDERS,
    GRAFANA_DATASOURCES,
    ROOT,
    read_yaml,
)

GRAFANA_PROVISIONING = "/etc/grafana/provisioning"  # the image's default GF_PATHS_PROVISIONING


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = read_yaml(COMPOSE)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


@functools.cache
def compose_validator() -> Any:
    """A validator of the Compose Specification schema that check-jsonschema ships."""
    schema = get_builtin_schema("vendor.compose-spec")
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def compose_errors(document: Any) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in compose_validator().iter_errors(document)
    ]


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    assert compose_errors(compose) == []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda c: c["services"]["postgres"].update(healthchek={}),
        lambda c: c["services"]["inf-engine"].update(ports=8000),
        lambda c: c["services"]["inf-engine"]["depends_on"]["postgres"].update(condition="up"),
    ],
    ids=["unknown-key", "wrong-type", "bad-enum"],
)
def test_the_schema_check_rejects_a_broken_compose_file(
    compose: dict[str, Any], break_it: Any
) -> None:
    broken = copy.deepcopy(compose)
    break_it(broken)
    assert compose_errors(broken) != []


def test_the_stack_has_its_five_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"postgres", "inf-engine", "inf-engine-worker", "prometheus", "grafana"}


def test_the_api_runs_no_jobs_and_the_worker_runs_them_on_the_same_database(
    services: dict[str, dict[str, Any]],
) -> None:
    api, worker = services["inf-engine"], services["inf-engine-worker"]
    assert api["command"] == ["serve", "--no-runner"]
    assert worker["command"] == ["worker"]
    assert worker["image"] == api["image"]
    for name in ("INF_DATABASE_URL", "INF_ENDPOINTS_FILE"):
        assert worker["environment"][name] == api["environment"][name]
    assert worker["volumes"] == api["volumes"]
    assert worker["depends_on"]["inf-engine"]["condition"] == "service_healthy"
    assert worker["healthcheck"]["disable"] is True


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """``container path -> host path`` of a service's bind mounts (short syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (COMPOSE.parent / source).resolve()
    return mounts


def host_path(service: dict[str, Any], container_path: str) -> Path:
    """The repository file a service sees at ``container_path`` through its bind mounts."""
    wanted = PurePosixPath(container_path)
    for target, source in bind_mounts(service).items():
        if wanted == PurePosixPath(target) or PurePosixPath(target) in wanted.parents:
            return source / wanted.relative_to(target)
    raise AssertionError(f"nothing is mounted at {container_path}")


def test_every_mounted_file_is_in_the_repository(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    named = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                path = (COMPOSE.parent / source).resolve()
                assert path.exists(), f"{name} mounts {source}, which does not exist"
                assert path.is_relative_to(ROOT), f"{name} mounts {source} from outside"
            else:
                assert source in named, f"{name} uses the undeclared volume {source}"


def test_postgres_is_healthchecked_before_the_service_starts(
    services: dict[str, dict[str, Any]],
) -> None:
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    depends = services["inf-engine"]["depends_on"]
    assert depends["postgres"]["condition"] == "service_healthy"


def test_the_service_connects_to_the_compose_postgres(services: dict[str, dict[str, Any]]) -> None:
    env = services["inf-engine"]["environment"]
    settings = Settings(database_url=env["INF_DATABASE_URL"])  # the service accepts it
    assert not settings.is_sqlite
    url = urlsplit(env["INF_DATABASE_URL"])
    pg = services["postgres"]["environment"]
    assert (url.hostname, url.port) == ("postgres", 5432)
    assert (url.username, url.password) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
    assert url.path == f"/{pg['POSTGRES_DB']}"
    assert env["INF_AUTH_MODE"] == "keys"


def test_the_service_is_built_here_and_loads_the_mounted_endpoints(
    services: dict[str, dict[str, Any]],
) -> None:
    service = services["inf-engine"]
    assert (COMPOSE.parent / service["build"] / "Dockerfile").is_file()
    assert "8000:8000" in service["ports"]
    endpoints = host_path(service, service["environment"]["INF_ENDPOINTS_FILE"])
    assert endpoints == (ROOT / "deploy" / "endpoints.yaml").resolve()
    config = ResourceConfig.from_yaml(endpoints)
    assert {alias: e.provider for alias, e in config.endpoints.items()} == {
        "fast": "simulated",
        "smart": "simulated",
    }


def test_prometheus_scrapes_the_service_every_5s(services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    (config_flag,) = [a for a in prometheus["command"] if a.startswith("--config.file=")]
    config = read_yaml(host_path(prometheus, config_flag.split("=", 1)[1]))
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "inf-engine"]
    assert job["scrape_interval"] == "5s"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    assert targets == ["inf-engine:8000"]
    host, port = targets[0].split(":")
    assert host in services
    assert any(p.split(":")[-1] == port for p in services[host]["ports"])


def test_grafana_provisions_the_prometheus_datasource(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    provisioning = grafana.get("environment", {}).get("GF_PATHS_PROVISIONING")
    provisioning = provisioning or GRAFANA_PROVISIONING
    path = host_path(grafana, f"{provisioning}/datasources/prometheus.yml")
    assert path == GRAFANA_DATASOURCES.resolve()
    (datasource,) = read_yaml(path)["datasources"]
    assert (datasource["type"], datasource["uid"]) == ("prometheus", "prometheus")
    url = urlsplit(datasource["url"])
    assert url.hostname in services
    assert any(p.split(":")[-1] == str(url.port) for p in services[url.hostname]["ports"])


def test_grafana_loads_the_dashboard_from_the_mounted_folder(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    path = host_path(grafana, f"{GRAFANA_PROVISIONING}/dashboards/inf-engine.yml")
    assert path == GRAFANA_DASHBOARD_PROVIDERS.resolve()
    (provider,) = read_yaml(path)["providers"]
    assert provider["type"] == "file"
    folder = host_path(grafana, provider["options"]["path"])
    assert (folder / DASHBOARD.name).resolve() == DASHBOARD.resolve()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert host_path(grafana, home).resolve() == DASHBOARD.resolve()


def test_grafana_lets_anonymous_viewers_in(services: dict[str, dict[str, Any]]) -> None:
    env = services["grafana"]["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert "3000:3000" in services["grafana"]["ports"]
