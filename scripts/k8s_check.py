#!/usr/bin/env python3
"""Offline checks of k8s/: every overlay is rendered, every object validated against the Kubernetes schemas
(kubernetes-validate, which bundles them), the deployment rules the issue asks for are enforced (no `latest`,
non-root, read-only root, resources, probes, the key Secret only in the signer container), and the ConfigMap's
signet.yaml passes `signet check-config` with each relay container's SIGNET_* environment.

Usage: k8s_check.py SIGNET_BINARY   (run by scripts/k8s-check.sh inside its virtualenv)
"""
import os
import shutil
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
K8S = os.path.join(ROOT, "k8s")
# Native sidecars (restartable init containers) need 1.29; check the oldest and the newest schemas bundled.
VERSIONS = ["1.29.0", "1.37.0"]
KUSTOMIZATION_FIELDS = {"apiVersion", "kind", "resources", "labels"}

# The Prometheus Operator's PodMonitor is a CRD, not in the bundled schemas: its fields that the manifests use.
PODMONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "spec": {
            "type": "object",
            "required": ["selector", "podMetricsEndpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {"type": "object", "properties": {"matchLabels": {"type": "object"}}},
                "namespaceSelector": {"type": "object"},
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scheme": {"enum": ["http", "https"]},
                        },
                    },
                },
            },
        },
    },
}

problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def render(directory, seen_files):
    """The objects of a kustomization, following `resources:` (files and directories)."""
    path = os.path.join(directory, "kustomization.yaml")
    with open(path) as f:
        kustomization = yaml.safe_load(f)
    extra = set(kustomization) - KUSTOMIZATION_FIELDS
    if extra:
        # Only what this renderer understands, so what is validated is what kustomize applies.
        problem(os.path.relpath(path, ROOT), f"fields this check cannot render: {sorted(extra)}")
    objects = []
    for resource in kustomization.get("resources", []):
        target = os.path.normpath(os.path.join(directory, resource))
        if os.path.isdir(target):
            objects += render(target, seen_files)
        elif os.path.isfile(target):
            seen_files.add(target)
            with open(target) as f:
                objects += [(os.path.relpath(target, ROOT), o) for o in yaml.safe_load_all(f) if o]
        else:
            problem(os.path.relpath(path, ROOT), f"resource {resource} does not exist")
    return objects


def containers(pod):
    return [("initContainers", c) for c in pod.get("initContainers", [])] + [
        ("containers", c) for c in pod.get("containers", [])
    ]


def check_image(where, image):
    name = image.split("@")[0]
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else None
    if "@sha256:" not in image and (tag is None or tag == "latest"):
        problem(where, f"image {image} must name a version tag (not latest, not none)")


def check_pod(where, pod, config):
    security = pod.get("securityContext", {})
    if security.get("runAsNonRoot") is not True:
        problem(where, "pod securityContext.runAsNonRoot must be true")
    if security.get("runAsUser") == 0:
        problem(where, "pod runs as root")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    shutdown = (config.get("timeouts") or {}).get("shutdown_grace", 30)
    if grace <= shutdown:
        problem(where, f"terminationGracePeriodSeconds {grace} must exceed timeouts.shutdown_grace {shutdown}")
    secret_volumes = {v["name"] for v in pod.get("volumes", []) if "secret" in v}
    relays = []
    for kind, c in containers(pod):
        cw = f"{where} {kind}/{c['name']}"
        check_image(cw, c.get("image", ""))
        sc = c.get("securityContext", {})
        if sc.get("runAsNonRoot") is False or sc.get("runAsUser") == 0:
            problem(cw, "runs as root")
        if sc.get("readOnlyRootFilesystem") is not True:
            problem(cw, "readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problem(cw, "allowPrivilegeEscalation must be false")
        resources = c.get("resources", {})
        for part in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(part, {}):
                    problem(cw, f"resources.{part}.{resource} is missing")
        for mount in c.get("volumeMounts", []):
            if mount["name"] in secret_volumes:
                if c["name"] != "signer":
                    problem(cw, f"mounts the Secret volume {mount['name']}: keys belong in the signer container only")
                if mount.get("readOnly") is not True:
                    problem(cw, f"Secret volume {mount['name']} must be mounted readOnly")
        args = c.get("args", [])
        if args[:1] == ["run"]:
            relays.append(c)
            probes = {p: (c.get(p) or {}).get("httpGet", {}) for p in ("livenessProbe", "readinessProbe")}
            if probes["livenessProbe"].get("path") != "/healthz" or probes["readinessProbe"].get("path") != "/readyz":
                problem(cw, "the relay needs livenessProbe GET /healthz and readinessProbe GET /readyz")
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            if ports.get("metrics") != 9025:
                problem(cw, "the relay needs a containerPort 9025 named metrics")
        if args[:1] == ["signer"] and not any(m["name"] in secret_volumes for m in c.get("volumeMounts", [])):
            problem(cw, "the signer container mounts no key Secret")
    if not relays:
        problem(where, "no container runs `signet run`")
    return relays


def localized_config(text, directory, signet):
    """signet.yaml with each /etc/signet/keys/NAME the relay reads replaced by a generated key of the same kind.

    Keys of an agent in its own container (backend agent with agent_socket) are left where they are: the relay
    container has no such files, and check-config must pass without them, as it would there."""
    config = yaml.safe_load(text)
    signing = config.get("signing") or {}
    for entry in (signing.get("keys") or {}).values():
        backend = entry.get("backend") or signing.get("backend") or "in-process"
        if backend == "agent" and signing.get("agent_socket"):
            continue
        original = entry["key_file"]
        local = os.path.join(directory, os.path.basename(original))
        if not os.path.exists(local):
            algorithm = entry.get("algorithm") or (
                "ed25519-sha256" if os.path.basename(original).startswith("ed") else "rsa-sha256"
            )
            subprocess.run(
                [signet, "keygen", "--algorithm", algorithm, "--out", local, "--selector", entry["selector"],
                 "--domain", entry["domain"]],
                check=True, capture_output=True)
        text = text.replace(original, local)
    return text


def check_config(where, text, relays, signet, directory):
    config = yaml.safe_load(text)
    listen = str(config.get("metrics_listen", "127.0.0.1:9025"))
    if listen.startswith("127.") or listen.startswith("[::1]") or listen.startswith("localhost"):
        problem(where, f"metrics_listen {listen} is loopback: probes and Prometheus cannot reach it")
    path = os.path.join(directory, "signet.yaml")
    with open(path, "w") as f:
        f.write(localized_config(text, directory, signet))
    for relay in relays:
        environment = {"PATH": "/usr/bin:/bin", "HOME": directory}
        environment.update({e["name"]: e["value"] for e in relay.get("env", []) if e["name"].startswith("SIGNET_")})
        result = subprocess.run(
            [signet, "check-config", path], env=environment, cwd=directory, capture_output=True, text=True, timeout=60)
        if result.returncode != 0 or "configuration OK" not in result.stdout:
            problem(where, f"signet check-config with the {relay['name']} container's environment: "
                    f"{result.stdout}{result.stderr}".strip())
        else:
            print(f"  {where} ({relay['name']}): {result.stdout.strip()}")
    return config


def check_overlay(overlay, signet, seen_files):
    name = os.path.relpath(overlay, ROOT)
    before = len(problems)
    objects = render(overlay, seen_files)
    by_kind = {}
    for source, obj in objects:
        by_kind.setdefault(obj.get("kind"), []).append((source, obj))
        where = f"{name}: {source} {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            if obj.get("kind") == "PodMonitor":
                jsonschema.validate(obj, PODMONITOR_SCHEMA)
            else:
                for version in VERSIONS:
                    kubernetes_validate.validate(obj, version, strict=True)
        except Exception as error:  # the validators' errors say what and where
            problem(where, f"{type(error).__name__}: {error}".splitlines()[0])
    config_maps = [o for _, o in by_kind.get("ConfigMap", []) if o["metadata"]["name"] == "signet-config"]
    if len(config_maps) != 1:
        problem(name, "needs exactly one ConfigMap signet-config")
        return
    text = config_maps[0]["data"]["signet.yaml"]
    config = yaml.safe_load(text)
    port_names = set()
    relays = []
    for source, deployment in by_kind.get("Deployment", []):
        where = f"{name}: {source}"
        pod = deployment["spec"]["template"]["spec"]
        relays += check_pod(where, pod, config)
        for _, c in containers(pod):
            port_names |= {p.get("name") for p in c.get("ports", [])}
            # The signer's keys are the configuration's keys, file for file.
            for arg in c.get("args", []):
                if arg.startswith("--key="):
                    key_name, _, key_path = arg[len("--key="):].partition("=")
                    entry = (config.get("signing", {}).get("keys") or {}).get(key_name)
                    if not entry or entry["key_file"] != key_path:
                        problem(where, f"signer --key {key_name}={key_path} does not match signing.keys in signet.yaml")
    for kind in ("Service", "PodMonitor"):
        for source, obj in by_kind.get(kind, []):
            wanted = [p.get("targetPort") for p in obj["spec"].get("ports", [])] + [
                e.get("port") for e in obj["spec"].get("podMetricsEndpoints", [])
            ]
            for port in wanted:
                if isinstance(port, str) and port not in port_names:
                    problem(f"{name}: {source}", f"port {port} is not a named container port")
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"):
        if kind not in by_kind:
            problem(name, f"has no {kind}")
    with tempfile.TemporaryDirectory(prefix="signet-k8s-check-") as directory:
        check_config(f"{name}: ConfigMap signet-config", text, relays, signet, directory)
    if len(problems) == before:
        print(f"  {name}: {len(objects)} objects valid for Kubernetes {', '.join(VERSIONS)}")


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        sys.exit("usage: k8s_check.py SIGNET_BINARY")
    signet = os.path.abspath(sys.argv[1])
    seen_files = set()
    overlays = sorted(os.path.join(K8S, "overlays", d) for d in os.listdir(os.path.join(K8S, "overlays")))
    for overlay in overlays:
        check_overlay(overlay, signet, seen_files)
    # kustomize itself, when installed, must render every overlay too.
    kubectl = shutil.which("kubectl")
    for overlay in overlays if kubectl else []:
        result = subprocess.run([kubectl, "kustomize", overlay], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            problem(os.path.relpath(overlay, ROOT), f"kubectl kustomize: {result.stderr.strip()}")
    manifests = {
        os.path.join(d, f)
        for d, _, files in os.walk(K8S)
        for f in files
        if f.endswith(".yaml") and f != "kustomization.yaml" and os.path.dirname(os.path.join(d, f)) != K8S
    }
    for orphan in sorted(manifests - seen_files):
        problem(os.path.relpath(orphan, ROOT), "not listed in any kustomization, so never checked or applied")
    if problems:
        print("k8s-check failed:", *problems, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"k8s-check: {len(overlays)} overlays OK")


if __name__ == "__main__":
    main()
