"""deploy/k8s/: valid Kubernetes objects (kubernetes-validate --strict, schemas bundled,
offline) that agree with the code: probes on the health routes, the port and settings the
server reads, a grace period longer than the drain, the Dockerfile's start command."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from server.serve import WORKER_KILL_TIMEOUT_S
from server.settings import Settings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
KINDS = {
    "ConfigMap",
    "Deployment",
    "HorizontalPodAutoscaler",
    "PersistentVolumeClaim",
    "PodDisruptionBudget",
    "Secret",
    "Service",
}


def _objects() -> dict[str, dict[str, Any]]:
    objects = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            objects[doc["kind"]] = doc
    return objects


def _container() -> dict[str, Any]:
    container: dict[str, Any] = _objects()["Deployment"]["spec"]["template"]["spec"]["containers"][
        0
    ]
    return container


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_manifest_is_valid_kubernetes_in_strict_mode(path: Path) -> None:
    """Each manifest validates against the bundled schemas of the latest Kubernetes, strictly."""
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_the_kubernetes_validate_command_passes_every_manifest_strictly(tmp_path: Path) -> None:
    """`kubernetes-validate --strict deploy/k8s/*.yaml`, the command as a person runs it,
    exits 0; on a manifest with a misspelt field it exits non-zero, naming the file."""
    command = Path(sys.executable).parent / "kubernetes-validate"
    manifests = [str(p) for p in sorted(K8S.glob("*.yaml"))]
    passed = subprocess.run(
        [command, "--strict", *manifests], capture_output=True, text=True, timeout=120, check=False
    )
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.count("passed") == len(manifests), passed.stdout
    deployment = _objects()["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProb"] = {}
    broken = tmp_path / "deployment.yaml"
    broken.write_text(yaml.safe_dump(deployment))
    failed = subprocess.run(
        [command, "--strict", str(broken)], capture_output=True, text=True, timeout=120, check=False
    )
    assert failed.returncode != 0
    assert str(broken) in failed.stdout + failed.stderr


def test_strict_validation_refuses_an_unknown_field() -> None:
    """A misspelt field fails (so the validation above can fail)."""
    deployment = json.loads(json.dumps(_objects()["Deployment"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_every_object_the_deployment_needs_is_there() -> None:
    """Deployment, Service, HPA, PDB, ConfigMap and Secret, all selecting the same pods."""
    objects = _objects()
    assert set(objects) == KINDS
    labels = objects["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert objects["Service"]["spec"]["selector"].items() <= labels.items()
    assert (
        objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    )
    assert objects["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == "scanopt"


def test_probes_port_and_scrape_match_the_server() -> None:
    """Readiness on /health/ready, liveness on /health/live, on the port the ConfigMap sets."""
    container = _container()
    config = _objects()["ConfigMap"]["data"]
    port = int(config["SCANOPT_PORT"])
    assert container["ports"][0]["containerPort"] == port
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    annotations = _objects()["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_settings_in_configmap_and_secret_are_ones_the_server_reads() -> None:
    """Every SCANOPT_* variable given is a known setting, and together they parse."""
    env = {**_objects()["ConfigMap"]["data"], **_objects()["Secret"]["stringData"]}
    assert list(Settings.unknown_variables(env)) == []
    settings = Settings.from_env(env)
    assert settings.workers == 2
    assert settings.host == "0.0.0.0"  # a container must listen on all interfaces


def test_grace_period_covers_pre_stop_and_drain() -> None:
    """terminationGracePeriodSeconds > preStop sleep + the workers' kill timeout."""
    pod = _objects()["Deployment"]["spec"]["template"]["spec"]
    pre_stop = " ".join(_container()["lifecycle"]["preStop"]["exec"]["command"])
    sleep_s = float(pre_stop.split("sleep(")[1].split(")")[0])
    assert pod["terminationGracePeriodSeconds"] > sleep_s + WORKER_KILL_TIMEOUT_S


def test_container_runs_the_dockerfile_command_as_non_root() -> None:
    """The container command is the Dockerfile's CMD (that of `just serve`), not as root."""
    cmd = next(
        line
        for line in (REPO / "deploy" / "Dockerfile").read_text().splitlines()
        if line.startswith("CMD ")
    )
    assert _container()["command"] == json.loads(cmd.removeprefix("CMD "))
    serve = (REPO / "justfile").read_text().split("\nserve:\n")[1].splitlines()[0]
    assert shlex.split(serve.replace("{{python}}", ".venv/bin/python")) == _container()["command"]
    security = _objects()["Deployment"]["spec"]["template"]["spec"]["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] != 0


def test_artifacts_live_on_one_shared_volume_seeded_once(tmp_path: Path) -> None:
    """Every pod mounts the ReadWriteMany claim where SCANOPT_ARTIFACTS points, so a
    promotion or rollback reaches every replica; the init container's script copies the
    image's default model there only while the volume has no alias (run here as written)."""
    objects = _objects()
    claim = objects["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    shared = objects["ConfigMap"]["data"]["SCANOPT_ARTIFACTS"]
    for container in [*pod["initContainers"], *pod["containers"]]:
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volume = volumes[mounts[shared]]
        assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]

    script = pod["initContainers"][0]["command"][-1].replace("/app", str(tmp_path / "app"))
    image = tmp_path / "app" / "artifacts"
    (image / "models" / "v1").mkdir(parents=True)
    (image / "models" / "v1" / "manifest.json").write_text("{}")
    (image / "current").write_text("v1\n")
    volume = tmp_path / "app" / "shared-artifacts"
    volume.mkdir()
    subprocess.run([sys.executable, "-c", script], check=True)
    assert (volume / "current").read_text() == "v1\n"
    assert (volume / "models" / "v1" / "manifest.json").exists()
    (volume / "current").write_text("v2\n")  # promoted since: a restart must keep it
    subprocess.run([sys.executable, "-c", script], check=True)
    assert (volume / "current").read_text() == "v2\n"
