"""The Kubernetes manifests: valid against the Kubernetes JSON schemas (bundled by
kubernetes-validate, offline) and consistent with each other, the image and the service."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from app.engine.resources.config import ResourceConfig
from tests.deploy.files import (
    ENDPOINTS,
    KUBERNETES,
    dockerfile_stages,
    image_uid,
    read_yaml,
    yaml_documents,
)

# The oldest Kubernetes minor these manifests promise to work on, and the newest schemas known.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
KUSTOMIZATION = KUBERNETES / "kustomization.yaml"
SECRET_EXAMPLE = "secret.example.yaml"
MANIFESTS = sorted(p.name for p in KUBERNETES.glob("*.yaml") if p != KUSTOMIZATION)
DOCUMENTS = [
    (name, i, doc) for name in MANIFESTS for i, doc in enumerate(yaml_documents(KUBERNETES / name))
]


def documents(kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        doc
        for _, _, doc in DOCUMENTS
        if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)
    ]


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = documents(kind, name)
    return found


API, WORKER = "inf-engine", "inf-engine-worker"  # the two Deployments


def pod_spec(kind: str, name: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = one(kind, name)["spec"]["template"]["spec"]
    return spec


def container(kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = pod_spec(kind, name)["containers"]
    return dict(found)


def validate(doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_every_manifest_is_found() -> None:
    assert {"configmap.yaml", "deployment.yaml", "migration-job.yaml", "service.yaml"} <= set(
        MANIFESTS
    )
    assert SECRET_EXAMPLE in MANIFESTS


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    "doc", [d for _, _, d in DOCUMENTS], ids=[f"{n}#{i}" for n, i, _ in DOCUMENTS]
)
def test_manifest_matches_the_kubernetes_schema(doc: dict[str, Any], version: str) -> None:
    validate(doc, version)


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d["spec"].update(replicas="two"),
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(livenesProbe={}),
        lambda d: d["spec"].pop("selector"),
    ],
    ids=["wrong-type", "unknown-field", "missing-required"],
)
def test_the_schema_check_rejects_a_broken_deployment(break_it: Any) -> None:
    broken = copy.deepcopy(one("Deployment", API))
    break_it(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken, KUBERNETES_VERSIONS[0])


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = read_yaml(KUSTOMIZATION)
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(set(MANIFESTS) - {SECRET_EXAMPLE})
    namespace = kustomization["namespace"]
    assert one("Namespace")["metadata"]["name"] == namespace
    for name, _, doc in DOCUMENTS:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, name


@pytest.mark.parametrize(("name", "args"), [(API, ["serve", "--no-runner"]), (WORKER, ["worker"])])
def test_api_and_workers_run_several_replicas_that_never_migrate(
    name: str, args: list[str]
) -> None:
    deployment = one("Deployment", name)
    assert deployment["spec"]["replicas"] >= 2
    env = {e["name"]: e for e in container("Deployment", name).get("env", [])}
    assert env["INF_AUTO_MIGRATE"]["value"] == "false"
    assert container("Deployment", name)["args"] == args


def test_workers_share_the_api_image_settings_and_endpoints() -> None:
    api, worker = container("Deployment", API), container("Deployment", WORKER)
    assert worker["image"] == api["image"]
    assert worker["envFrom"] == api["envFrom"]
    assert worker["volumeMounts"] == api["volumeMounts"]
    assert pod_spec("Deployment", WORKER)["volumes"] == pod_spec("Deployment", API)["volumes"]
    ports = [port["name"] for port in worker["ports"]]
    assert ports == ["metrics"], "a worker answers no HTTP but its metrics"


def test_the_service_selects_the_api_pods_only() -> None:
    selector = one("Service")["spec"]["selector"].items()
    assert selector <= one("Deployment", API)["spec"]["template"]["metadata"]["labels"].items()
    assert (
        not selector <= one("Deployment", WORKER)["spec"]["template"]["metadata"]["labels"].items()
    )
    for name in (API, WORKER):
        deployment = one("Deployment", name)
        selected = deployment["spec"]["selector"]["matchLabels"].items()
        others = [d for d in documents("Deployment") if d is not deployment]
        assert all(
            not selected <= d["spec"]["template"]["metadata"]["labels"].items() for d in others
        )


def test_probes_ask_healthz_and_readyz_on_the_served_port() -> None:
    main = container("Deployment", API)
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"http": 8000}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    annotations = one("Deployment", API)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ports["http"]
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize(
    ("kind", "name"), [("Deployment", API), ("Deployment", WORKER), ("Job", None)]
)
def test_pods_run_as_the_image_user_on_a_read_only_root(kind: str, name: str | None) -> None:
    uid = image_uid(dockerfile_stages()[-1])
    pod = pod_spec(kind, name)["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == uid
    main = container(kind, name)
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    assert main["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert main["resources"]["requests"]
    assert main["resources"]["limits"]["memory"]
    volumes = {v["name"]: v for v in pod_spec(kind, name)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_migration_job_migrates_with_the_deployment_image() -> None:
    job = container("Job")
    assert job["args"] == ["migrate"]
    assert job["image"] == container("Deployment", API)["image"]
    assert pod_spec("Job")["restartPolicy"] in {"Never", "OnFailure"}


def test_references_between_manifests_resolve() -> None:
    config_maps = {d["metadata"]["name"]: d for d in documents("ConfigMap")}
    secret = one("Secret")
    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    main = container("Deployment", API)
    for source in main["envFrom"]:
        if "configMapRef" in source:
            assert source["configMapRef"]["name"] in config_maps
        else:
            assert source["secretRef"]["name"] == secret["metadata"]["name"]
    for env in container("Job")["env"]:
        ref = env["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret_keys
    assert "INF_DATABASE_URL" in secret_keys
    service = one("Service")
    pod_labels = one("Deployment", API)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert one("Deployment", API)["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    port_names = {p["name"] for p in main["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def endpoints_file_in_the_pod() -> tuple[str, str]:
    """The ConfigMap name and key that INF_ENDPOINTS_FILE names in the Deployment's pods."""
    settings = {}
    for source in container("Deployment", API)["envFrom"]:
        if "configMapRef" in source:
            settings.update(one("ConfigMap", source["configMapRef"]["name"])["data"])
    path = Path(settings["INF_ENDPOINTS_FILE"])
    mounts = {m["mountPath"]: m["name"] for m in container("Deployment", API)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec("Deployment", API)["volumes"]}
    volume = volumes[mounts[str(path.parent)]]
    return volume["configMap"]["name"], path.name


def test_endpoints_file_is_mounted_from_the_configmap_and_matches_compose() -> None:
    config_map, key = endpoints_file_in_the_pod()
    text = one("ConfigMap", config_map)["data"][key]
    ResourceConfig.from_dict(yaml.safe_load(text))  # the service would load it
    assert yaml.safe_load(text) == read_yaml(ENDPOINTS)


def test_the_secret_example_holds_placeholders_only() -> None:
    secret = one("Secret")
    assert secret["stringData"], "the example shows which keys the Secret needs"
    for key, value in secret["stringData"].items():
        assert "CHANGE-ME" in value, key


def test_workers_expose_their_metrics_port_to_prometheus() -> None:
    worker = container("Deployment", WORKER)
    env = {var["name"]: var.get("value") for var in worker["env"]}
    (port,) = worker["ports"]
    annotations = one("Deployment", WORKER)["spec"]["template"]["metadata"]["annotations"]
    assert (port["name"], str(port["containerPort"])) == ("metrics", env["INF_METRICS_PORT"])
    assert env["INF_HOST"] == "0.0.0.0"
    assert annotations["prometheus.io/port"] == env["INF_METRICS_PORT"]
    assert annotations["prometheus.io/path"] == "/metrics"
