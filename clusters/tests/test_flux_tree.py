"""Offline proof that every environment's Flux tree builds, validates and is wired correctly.

What runs only in the cloud (flux build/diff against the live cluster, server-side dry-run,
templates of third-party charts) is listed in docs/gitops.md.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import re
import subprocess
from pathlib import Path

import pytest
import yaml

import fluxtree
import schema_check
from fluxtree import ENVIRONMENTS, REPO, envsubst, object_id

SEMVER_EXACT = re.compile(r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
GIT_SHA = re.compile(r"^[0-9a-f]{40}$")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
BUILTIN_CLUSTER_ROLES = {"view", "edit", "admin", "cluster-admin"}
SYSTEM_NAMESPACES = {"kube-system", "flux-system", "default"}
# Namespaces allowed to run privileged pods, and why (also in the namespaces' comments).
PRIVILEGED_NAMESPACES = {
    "monitoring": "node-exporter needs host network, PID and /proc, /sys mounts",
    "arc-runners-docker": "Docker-in-Docker runners need a privileged daemon",
}
SCALE_SETS = {("arc-runners", "arc-linux"), ("arc-runners-docker", "arc-linux-docker")}


def flux_objects(rendered: fluxtree.Rendered) -> list[tuple[str, dict]]:
    return [(origin, obj) for origin, obj in rendered.objects.values() if not origin.startswith("helm:")]


def find(rendered: fluxtree.Rendered, kind: str, name: str, namespace: str | None) -> dict | None:
    entry = rendered.objects.get(f"{kind}/{namespace or '_cluster'}/{name}")
    return entry[1] if entry else None


# --- the substitution engine itself ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "variables", "expected", "missing"),
    [
        ("host: tasks.${domain}", {"domain": "example.com"}, "host: tasks.example.com", []),
        ("r: ${replicas:=2}", {}, "r: 2", []),
        ("r: ${replicas:=2}", {"replicas": "3"}, "r: 3", []),
        ("r: ${replicas:-2}", {"replicas": ""}, "r: 2", []),
        ("r: ${replicas-2}", {"replicas": ""}, "r: ", []),
        ("grafana: $${__value.raw}", {}, "grafana: ${__value.raw}", []),
        ("hook: $$job", {"job": "x"}, "hook: $job", []),
        ("bare: $name!", {"name": "v"}, "bare: v!", []),
        ("unset: ${nope}", {}, "unset: ", ["nope"]),
        ("k8s env: $(POD_NAME)", {}, "k8s env: $(POD_NAME)", []),
    ],
)
def test_substitution_follows_flux_semantics(text, variables, expected, missing):
    result, unresolved = envsubst(text, variables)
    assert result == expected
    assert unresolved == missing


# --- fixtures mirror the OpenTofu contract ------------------------------------------------


def _opentofu_cluster_var_keys() -> set[str] | None:
    flux_tf = REPO / "opentofu" / "stacks" / "platform" / "flux.tf"
    if not flux_tf.exists():
        return None
    block = re.search(r"cluster_vars\s*=\s*\{(.*?)\n  \}", flux_tf.read_text(), re.S)
    assert block, "cluster_vars map not found in opentofu/stacks/platform/flux.tf"
    return set(re.findall(r"^\s*([a-z_][a-z0-9_]*)\s*=", block.group(1), re.M))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_cluster_vars_fixture_matches_what_opentofu_writes(environment):
    variables = fluxtree.cluster_vars(environment)
    assert fluxtree.CLUSTER_VARS_KEYS <= set(variables), "a key of the shared contract is missing"
    assert variables["environment"] == environment
    opentofu_keys = _opentofu_cluster_var_keys()
    if opentofu_keys is not None:
        assert set(variables) == opentofu_keys, "fixture and opentofu/stacks/platform/flux.tf disagree"
    assert not any("$" in value for value in variables.values())


# --- rendering ----------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_environment_renders_without_problems(rendered, environment):
    result = rendered(environment)
    assert result.problems == []
    assert {"flux-system", "infra-controllers", "infra-configs", "apps"} <= set(result.kustomizations)
    assert len(result.objects) > 50


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_bootstrap_manifests_are_what_flux_bootstrap_writes(rendered, environment):
    cluster_dir = REPO / "clusters" / environment / "flux-system"
    kustomization = yaml.safe_load((cluster_dir / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["gotk-components.yaml", "gotk-sync.yaml"]
    result = rendered(environment)
    repo = find(result, "GitRepository", "flux-system", "flux-system")
    root = result.kustomizations["flux-system"]
    assert repo["spec"]["ref"] == {"branch": "main"}
    assert root["spec"]["path"] == f"./clusters/{environment}"
    assert root["spec"]["prune"] is True
    controller = next(
        o for o in result.bootstrap if o["kind"] == "Deployment" and o["metadata"]["name"] == "kustomize-controller"
    )
    args = controller["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-remote-bases=true" in args
    assert "--feature-gates=StrictPostBuildSubstitutions=true" in args


# --- schemas -------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_object_matches_its_schema(rendered, crd_validator, environment):
    result = rendered(environment)
    items = [(key, obj) for key, (_, obj) in result.objects.items()]
    items += [(f"bootstrap:{object_id(obj)}", obj) for obj in result.bootstrap if obj["kind"] != "Deployment"]
    problems = schema_check.validate_objects(crd_validator, items)
    assert problems == {}


def test_schema_check_rejects_broken_and_unknown_objects(rendered, crd_validator):
    """The checker must fail on the mistakes it exists for; otherwise a green run proves nothing."""
    result = rendered("dev")
    deployment = copy.deepcopy(find(result, "Deployment", "task-api", "task-api"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    typo = copy.deepcopy(find(result, "HelmRelease", "loki", "observability"))
    typo["spec"]["upgrade"]["remediation"]["remediateLastFailur"] = True
    wrong_type = copy.deepcopy(find(result, "Kustomization", "apps", "flux-system"))
    wrong_type["spec"]["prune"] = "yes"
    store_typo = copy.deepcopy(find(result, "ClusterSecretStore", "aws-secrets-manager", None))
    store_typo["spec"]["provider"]["aws"]["regoin"] = "eu-west-1"
    alert_enum = copy.deepcopy(find(result, "Alert", "reconcile-failures", "flux-system"))
    alert_enum["spec"]["eventSeverity"] = "fatal"
    unknown_kind = {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmChartRelease", "metadata": {"name": "x"}}
    unknown_group = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}}
    broken = {
        "deployment": deployment,
        "typo": typo,
        "wrong_type": wrong_type,
        "store_typo": store_typo,
        "alert_enum": alert_enum,
        "unknown_kind": unknown_kind,
        "unknown_group": unknown_group,
    }
    problems = schema_check.validate_objects(crd_validator, list(broken.items()))
    assert set(problems) == set(broken), f"not rejected: {set(broken) - set(problems)}"
    assert "imagePullPolice" in problems["deployment"][0]
    assert any("remediateLastFailur" in p for p in problems["typo"])
    assert any("regoin" in p for p in problems["store_typo"])
    assert any("unknown-kind" in p for p in problems["unknown_kind"] + problems["unknown_group"])


# --- references ----------------------------------------------------------------------------


def _secret_exists(result: fluxtree.Rendered, namespace: str, name: str) -> bool:
    if find(result, "Secret", name, namespace):
        return True
    for _, obj in result.objects.values():
        if obj["kind"] == "ExternalSecret" and obj["metadata"]["namespace"] == namespace:
            if (obj["spec"].get("target") or {}).get("name", obj["metadata"]["name"]) == name:
                return True
    return False


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_reference_resolves(rendered, environment):
    result = rendered(environment)
    problems: list[str] = []

    def expect(kind: str, name: str, namespace: str | None, who: str) -> None:
        if find(result, kind, name, namespace) is None:
            problems.append(f"{who} refers to missing {kind} {namespace or ''}/{name}")

    for name, ks in result.kustomizations.items():
        who = f"Kustomization {name}"
        spec = ks["spec"]
        expect(spec["sourceRef"]["kind"], spec["sourceRef"]["name"], spec["sourceRef"].get("namespace", "flux-system"), who)
        for dep in spec.get("dependsOn") or []:
            if dep["name"] not in result.kustomizations:
                problems.append(f"{who} depends on missing Kustomization {dep['name']}")
        for check in spec.get("healthChecks") or []:
            expect(check["kind"], check["name"], check.get("namespace"), who)
        for ref in (spec.get("postBuild") or {}).get("substituteFrom") or []:
            # cluster-vars is written by OpenTofu before bootstrap (opentofu/stacks/platform/flux.tf).
            if (ref["kind"], ref["name"]) != ("ConfigMap", "cluster-vars"):
                problems.append(f"{who} substitutes from {ref}, which nothing creates")
        if not (REPO / spec["path"]).is_dir():
            problems.append(f"{who} path {spec['path']} does not exist")

    for origin, release in flux_objects(result):
        if release["kind"] != "HelmRelease":
            continue
        namespace, spec = release["metadata"]["namespace"], release["spec"]
        who = f"HelmRelease {namespace}/{release['metadata']['name']}"
        if "chartRef" in spec:
            ref = spec["chartRef"]
            expect(ref["kind"], ref["name"], ref.get("namespace", namespace), who)
        else:
            ref = spec["chart"]["spec"]["sourceRef"]
            expect(ref["kind"], ref["name"], ref.get("namespace", namespace), who)
        for dep in spec.get("dependsOn") or []:
            expect("HelmRelease", dep["name"], dep.get("namespace", namespace), who)
        for ref in spec.get("valuesFrom") or []:
            if ref["kind"] == "Secret" and not _secret_exists(result, namespace, ref["name"]):
                problems.append(f"{who} takes values from missing Secret {ref['name']}")
            if ref["kind"] == "ConfigMap":
                expect("ConfigMap", ref["name"], namespace, who)

    for _, obj in flux_objects(result):
        kind, meta, spec = obj["kind"], obj["metadata"], obj.get("spec") or {}
        who = object_id(obj)
        if kind == "ExternalSecret":
            store = spec["secretStoreRef"]
            expect(store["kind"], store["name"], None if store["kind"] == "ClusterSecretStore" else meta["namespace"], who)
        if kind == "Certificate":
            issuer = spec["issuerRef"]
            expect(issuer["kind"], issuer["name"], None if issuer["kind"] == "ClusterIssuer" else meta["namespace"], who)
        if kind == "ClusterIssuer" and "ca" in spec:
            if not any(
                o["kind"] == "Certificate" and o["spec"]["secretName"] == spec["ca"]["secretName"]
                and o["metadata"]["namespace"] == "cert-manager"
                for _, o in result.objects.values()
            ):
                problems.append(f"{who} uses CA secret {spec['ca']['secretName']} that no Certificate issues")
        if kind == "Alert":
            expect("Provider", spec["providerRef"]["name"], meta["namespace"], who)
        if kind in ("RoleBinding", "ClusterRoleBinding"):
            role = obj["roleRef"]
            if role["kind"] == "ClusterRole" and role["name"] not in BUILTIN_CLUSTER_ROLES:
                expect("ClusterRole", role["name"], None, who)
            if role["kind"] == "Role":
                expect("Role", role["name"], meta["namespace"], who)
        if kind == "AlertmanagerConfig":
            for receiver in spec.get("receivers") or []:
                for config in receiver.get("slackConfigs", []) + receiver.get("pagerdutyConfigs", []):
                    secret = config.get("apiURL") or config.get("routingKey")
                    if not _secret_exists(result, meta["namespace"], secret["name"]):
                        problems.append(f"{who} receiver {receiver['name']} reads missing Secret {secret['name']}")
        for ref in ((spec.get("values") or {}).get("githubConfigSecret"),) if kind == "HelmRelease" else ():
            if ref and not _secret_exists(result, meta["namespace"], ref):
                problems.append(f"{who} runner credentials Secret {ref} is not created")

    # Every namespace an object lands in is created by the tree (or is a system namespace).
    namespaces = {o["metadata"]["name"] for o in result.of_kind("Namespace")}
    for key, (_, obj) in result.objects.items():
        namespace = obj["metadata"].get("namespace")
        if namespace and namespace not in namespaces | SYSTEM_NAMESPACES:
            problems.append(f"{key} is in namespace {namespace}, which the tree does not create")
    assert problems == []


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_kustomizations_are_ordered_and_guarded(rendered, environment):
    result = rendered(environment)
    chain = {"infra-configs": "infra-controllers", "apps": "infra-configs"}
    for name, parent in chain.items():
        assert [d["name"] for d in result.kustomizations[name]["spec"]["dependsOn"]] == [parent]
    for name, ks in result.kustomizations.items():
        if name == "flux-system":
            continue
        spec = ks["spec"]
        assert spec["prune"] is True, name
        assert {"interval", "retryInterval", "timeout"} <= set(spec), name
        assert spec.get("wait") is True or spec.get("healthChecks"), f"{name} neither waits nor health-checks"
        assert {"kind": "ConfigMap", "name": "cluster-vars"} in spec["postBuild"]["substituteFrom"], name
        assert spec["path"].endswith(f"/{environment}"), f"{name} points at another environment: {spec['path']}"


# --- pinning -------------------------------------------------------------------------------


def _images_in(value, where=""):
    """(path, image reference) of every image named in an object, Helm values included."""
    if isinstance(value, dict):
        image = value.get("image")
        if isinstance(image, str):
            yield f"{where}/image", image
        elif isinstance(image, dict) and "repository" in image:
            reference = image["repository"]
            if image.get("digest"):
                reference += "@" + image["digest"]
            elif "tag" in image:
                reference += ":" + str(image["tag"])
            yield f"{where}/image", reference
        for key, item in value.items():
            if key != "image" or not isinstance(item, (str, dict)):
                yield from _images_in(item, f"{where}/{key}")
            elif isinstance(item, dict):
                yield from _images_in({k: v for k, v in item.items() if isinstance(v, (dict, list))}, f"{where}/image")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _images_in(item, f"{where}/{index}")


def image_is_pinned(reference: str) -> bool:
    if "@sha256:" in reference:
        return DIGEST.match(reference.split("@", 1)[1]) is not None
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag or tag in ("", "latest", "main", "master", "stable", "dev"):
        return False
    return SEMVER_EXACT.match(tag) is not None or GIT_SHA.match(tag) is not None or re.match(r"^v?\d+(\.\d+)+", tag) is not None


@pytest.mark.parametrize(
    ("reference", "pinned"),
    [
        ("ghcr.io/actions/actions-runner:2.329.0", True),
        ("docker.io/library/docker:28.5.1-dind", True),
        ("registry/task-api:" + "a" * 40, True),
        ("registry/task-api@sha256:" + "0" * 64, True),
        ("ghcr.io/actions/actions-runner:latest", False),
        ("ghcr.io/actions/actions-runner", False),
        ("registry:5000/app", False),
        ("docker:dind", False),
    ],
)
def test_image_pin_rule(reference, pinned):
    assert image_is_pinned(reference) is pinned


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_sources_charts_and_images_are_pinned(rendered, environment):
    result = rendered(environment)
    problems = []
    for key, (_, obj) in result.objects.items():
        kind, spec = obj["kind"], obj.get("spec") or {}
        if kind == "HelmRelease" and "chart" in spec:
            version = str(spec["chart"]["spec"].get("version", ""))
            if not SEMVER_EXACT.match(version):
                problems.append(f"{key}: chart version {version!r} is not an exact version")
        if kind == "OCIRepository":
            ref = spec.get("ref") or {}
            if not (DIGEST.match(ref.get("digest", "")) or SEMVER_EXACT.match(ref.get("tag", ""))):
                problems.append(f"{key}: OCI source not pinned to a tag or digest: {ref}")
        if kind == "GitRepository":
            # The bootstrap repository tracks main by design (that is GitOps); anything else pins.
            ref = spec.get("ref") or {}
            if key != "GitRepository/flux-system/flux-system" and not (ref.get("commit") or ref.get("tag")):
                problems.append(f"{key}: Git source not pinned: {ref}")
        for path, image in _images_in(obj):
            if not image_is_pinned(image):
                problems.append(f"{key}{path}: image {image!r} is not pinned")
    assert problems == []


# --- substitution completeness -------------------------------------------------------------

_LEFTOVER = re.compile(r"\$\{[^}]*\}|\$[_a-zA-Z][_a-zA-Z0-9]*")


def _escaped_literals() -> set[str]:
    """`$${...}` / `$$name` in the tree: text meant to reach the cluster with a literal `$`."""
    found = set()
    for root in ("infrastructure", "apps", "clusters"):
        for path in (REPO / root).rglob("*.yaml"):
            if "chart" in path.parts or "tests" in path.parts:
                continue
            found.update(m[1:] for m in re.findall(r"\$\$\{[^}]*\}|\$\$[_a-zA-Z][_a-zA-Z0-9]*", path.read_text()))
    return found


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_nothing_is_left_unsubstituted(rendered, environment):
    result = rendered(environment)
    escaped = _escaped_literals()
    leftovers = []
    for origin, obj in flux_objects(result):
        if origin == "flux-system":
            continue  # the root Kustomization does not substitute (and needs nothing)
        for match in _LEFTOVER.findall(yaml.safe_dump(obj)):
            if match not in escaped:
                leftovers.append(f"{object_id(obj)}: {match}")
    root_text = yaml.safe_dump_all([o for origin, o in flux_objects(result) if origin == "flux-system"])
    leftovers += [f"clusters/{environment}: {m}" for m in re.findall(r"\$\{[^}]*\}", root_text)]
    assert leftovers == []


# --- environments differ only where intended ----------------------------------------------

# "Kind/namespace/name:path" patterns of fields that may differ between environments. Everything
# else must be identical, so an accidental drift (a patch in one overlay only) fails.
ALLOWED_DIFFERENCES = (
    # Each cluster syncs its own paths, with its own sizing and policies.
    "Kustomization/flux-system/*:spec.path",
    "Kustomization/flux-system/infra-controllers:spec.postBuild.substitute.*",
    "Kustomization/flux-system/infra-configs:spec.postBuild.substitute.*",
    # Controller sizing from those substitutions.
    "HelmRelease/*:spec.values.replicaCount",
    "HelmRelease/*:spec.values.replicas",
    "HelmRelease/*:spec.values.controller.replicas",
    "HelmRelease/monitoring/kube-prometheus-stack:spec.values.prometheus.prometheusSpec.replicas",
    "HelmRelease/monitoring/kube-prometheus-stack:spec.values.prometheus.prometheusSpec.retention",
    "HelmRelease/monitoring/kube-prometheus-stack:spec.values.prometheus.prometheusSpec.storageSpec.*",
    "HelmRelease/monitoring/kube-prometheus-stack:spec.values.alertmanager.alertmanagerSpec.replicas",
    "HelmRelease/observability/loki:spec.values.loki.limits_config.retention_period",
    "HelmRelease/observability/loki:spec.values.singleBinary.persistence.size",
    "HelmRelease/observability/tempo:spec.values.tempo.retention",
    # Cost guard per environment.
    "HelmRelease/arc-runners/arc-linux:spec.values.maxRunners",
    "HelmRelease/arc-runners-docker/arc-linux-docker:spec.values.maxRunners",
    # Let's Encrypt staging outside production; alert routing and paging.
    "ClusterIssuer/_cluster/letsencrypt:spec.acme.server",
    "AlertmanagerConfig/monitoring/platform:spec.receivers*",
    "AlertmanagerConfig/monitoring/platform:spec.route.routes*",
    "ExternalSecret/monitoring/alertmanager-pagerduty:*",
    # Team access: developers edit in dev only.
    "RoleBinding/task-api/task-api-developers:roleRef.name",
    # The Task API: promotion (release.yaml) and the per-environment values patch.
    "HelmRelease/task-api/task-api:spec.chart.spec.version",
    "HelmRelease/task-api/task-api:spec.values.image.tag",
    "HelmRelease/task-api/task-api:spec.values.resources.*",
    "HelmRelease/task-api/task-api:spec.values.autoscaling.*",
    "HelmRelease/task-api/task-api:spec.values.podDisruptionBudget.*",
    "HelmRelease/task-api/task-api:spec.values.config.logLevel",
    # ... and what the chart renders from those values.
    "Deployment/task-api/task-api:spec.template.spec.containers.*.resources.*",
    "Deployment/task-api/task-api:spec.template.spec.containers.*.image",
    "Deployment/task-api/task-api:spec.template.spec.containers.*.env.*",
    "Deployment/task-api/task-api:spec.template.metadata.labels.*",
    "Deployment/task-api/task-api:metadata.labels.*",
    "HorizontalPodAutoscaler/task-api/task-api:spec.minReplicas",
    "HorizontalPodAutoscaler/task-api/task-api:spec.maxReplicas",
    "PodDisruptionBudget/task-api/task-api:*",
)


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        if not value:
            yield prefix, {}
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list):
        if not value:
            yield prefix, []
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}.{index}")
    else:
        yield prefix, value


def _differences(left: fluxtree.Rendered, right: fluxtree.Rendered) -> set[str]:
    found = set()
    for key in set(left.objects) | set(right.objects):
        if key not in left.objects or key not in right.objects:
            found.add(f"{key}:*")
            continue
        a = dict(_flatten(left.objects[key][1]))
        b = dict(_flatten(right.objects[key][1]))
        found.update(f"{key}:{path}" for path in set(a) | set(b) if a.get(path, object()) != b.get(path, object()))
    return found


def _readable_diff(left: fluxtree.Rendered, right: fluxtree.Rendered) -> list[str]:
    lines = []
    for key in sorted(set(left.objects) | set(right.objects)):
        a = yaml.safe_dump(left.objects[key][1], sort_keys=True).splitlines() if key in left.objects else []
        b = yaml.safe_dump(right.objects[key][1], sort_keys=True).splitlines() if key in right.objects else []
        if a != b:
            lines += list(difflib.unified_diff(a, b, f"{left.environment}/{key}", f"{right.environment}/{key}", n=1, lineterm=""))
    return lines


def test_environments_differ_only_where_intended(rendered_with_shared_vars):
    envs = rendered_with_shared_vars
    unexpected = {}
    for left, right in (("dev", "staging"), ("staging", "prod")):
        differences = _differences(envs[left], envs[right])
        fluxtree.ENV_DIFF_REPORT.append(f"--- {left} -> {right}: {len(differences)} differing fields ---")
        fluxtree.ENV_DIFF_REPORT.extend(_readable_diff(envs[left], envs[right]))
        stray = sorted(d for d in differences if not any(fnmatch.fnmatchcase(d, p) for p in ALLOWED_DIFFERENCES))
        if stray:
            unexpected[f"{left}->{right}"] = stray
    assert unexpected == {}
    # The differences that must exist: the cost guard grows with the environment, only
    # production pages, and only dev grants developers write access.
    caps = {
        env: [find(r, "HelmRelease", name, ns)["spec"]["values"]["maxRunners"] for ns, name in sorted(SCALE_SETS)]
        for env, r in envs.items()
    }
    assert all(caps["dev"][i] < caps["staging"][i] <= caps["prod"][i] for i in range(len(SCALE_SETS))), caps
    assert [bool(find(envs[e], "ExternalSecret", "alertmanager-pagerduty", "monitoring")) for e in ENVIRONMENTS] == [
        False,
        False,
        True,
    ]
    roles = [find(envs[e], "RoleBinding", "task-api-developers", "task-api")["roleRef"]["name"] for e in ENVIRONMENTS]
    assert roles == ["edit", "view", "view"]


# --- platform policies ---------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_namespaces_carry_pod_security_levels(rendered, environment):
    result = rendered(environment)
    for namespace in result.of_kind("Namespace"):
        name, labels = namespace["metadata"]["name"], namespace["metadata"].get("labels") or {}
        if name == "flux-system":
            continue  # created and labelled by flux bootstrap
        level = labels.get("pod-security.kubernetes.io/enforce")
        assert level in ("restricted", "baseline", "privileged"), name
        if level == "privileged":
            assert name in PRIVILEGED_NAMESPACES, f"{name} is privileged without a recorded reason"
    assert find(result, "Namespace", "task-api", None)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_runner_scale_sets_are_capped_ephemeral_and_on_the_runner_pool(rendered, environment):
    result = rendered(environment)
    controller_source = find(result, "OCIRepository", "arc-controller", "flux-system")
    scale_set_source = find(result, "OCIRepository", "arc-runner-scale-set", "flux-system")
    assert controller_source["spec"]["ref"]["tag"] == scale_set_source["spec"]["ref"]["tag"]
    assert controller_source["spec"]["ref"]["tag"].startswith("0.14.")
    controller_sa = find(result, "HelmRelease", "arc", "arc-systems")["spec"]["values"]["fullnameOverride"]
    for namespace, name in SCALE_SETS:
        values = find(result, "HelmRelease", name, namespace)["spec"]["values"]
        assert values["runnerScaleSetName"] == name
        assert values["minRunners"] == 0
        assert isinstance(values["maxRunners"], int) and 1 <= values["maxRunners"] <= 32
        assert values["controllerServiceAccount"] == {"namespace": "arc-systems", "name": controller_sa}
        pod = values["template"]["spec"]
        assert pod["nodeSelector"] == {"node-pool": "runners"}
        assert {"key": "runners", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in pod["tolerations"]
    assert find(result, "HelmRelease", "arc-linux", "arc-runners")["spec"]["values"]["containerMode"]["type"] == "kubernetes"


def _opentofu_pod_identities() -> set[tuple[str, str]] | None:
    identities = REPO / "opentofu" / "stacks" / "platform" / "identities.tf"
    if not identities.exists():
        return None
    return set(re.findall(r'namespace\s*=\s*"([^"]+)"\s*\n\s*service_account\s*=\s*"([^"]+)"', identities.read_text()))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_service_accounts_match_the_pod_identity_associations(rendered, environment):
    """OpenTofu binds AWS roles to (namespace, service account); a renamed account would run
    without credentials."""
    associations = _opentofu_pod_identities()
    if associations is None:
        pytest.skip("opentofu/stacks/platform/identities.tf not present")
    result = rendered(environment)
    values = {
        ("kube-system", "aws-load-balancer-controller"): find(result, "HelmRelease", "aws-load-balancer-controller", "kube-system")["spec"]["values"]["serviceAccount"]["name"],
        ("external-secrets", "external-secrets"): find(result, "HelmRelease", "external-secrets", "external-secrets")["spec"]["values"]["serviceAccount"]["name"],
        ("kube-system", "cluster-autoscaler"): find(result, "HelmRelease", "cluster-autoscaler", "kube-system")["spec"]["values"]["rbac"]["serviceAccount"]["name"],
    }
    for (namespace, expected), configured in values.items():
        assert (namespace, expected) in associations
        assert configured == expected
    for namespace, account in associations:
        if namespace == "task-api":
            service_account = find(result, "ServiceAccount", account, namespace)
            assert service_account is not None, f"chart does not render ServiceAccount {namespace}/{account}"
            assert "eks.amazonaws.com/role-arn" not in (service_account["metadata"].get("annotations") or {})


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_task_api_is_wired_to_this_clusters_values(rendered, environment):
    result = rendered(environment)
    variables = fluxtree.cluster_vars(environment)
    release_file = yaml.safe_load((REPO / "apps" / environment / "release.yaml").read_text())
    tag = release_file["spec"]["values"]["image"]["tag"]
    deployment = find(result, "Deployment", "task-api", "task-api")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{variables['ecr_registry']}/task-api:{tag}"
    env = {e["name"]: e for e in container["env"]}
    assert env["OIDC_ISSUER_URL"]["value"] == variables["oidc_issuer_url"]
    assert env["OIDC_AUDIENCE"]["value"] == variables["oidc_audience"]
    assert env["TASK_API_DEV_MODE"]["value"] == "false"
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "task-api-database", "key": "DATABASE_URL"}
    database = find(result, "ExternalSecret", "task-api-database", "task-api")
    assert {d["remoteRef"]["key"] for d in database["spec"]["data"]} == {variables["db_secret_name"]}
    url = database["spec"]["target"]["template"]["data"]["DATABASE_URL"]
    assert f"@{variables['db_host']}:{variables['db_port']}/{variables['db_name']}?" in url
    ingress = find(result, "Ingress", "task-api", "task-api")
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [f"tasks.{variables['domain']}"]
    assert variables["acm_certificate_arn"] in yaml.safe_dump(ingress["metadata"]["annotations"])
    repository = find(result, "HelmRepository", "task-api-charts", "task-api")
    assert repository["spec"] == {**repository["spec"], "type": "oci", "url": f"oci://{variables['ecr_registry']}/charts"}


# --- files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_release_file_has_exactly_the_promotion_shape(environment):
    release = yaml.safe_load((REPO / "apps" / environment / "release.yaml").read_text())
    version = release["spec"]["chart"]["spec"]["version"]
    tag = release["spec"]["values"]["image"]["tag"]
    assert release == {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "task-api", "namespace": "task-api"},
        "spec": {"chart": {"spec": {"version": version}}, "values": {"image": {"tag": tag}}},
    }
    assert isinstance(version, str) and SEMVER_EXACT.match(version) and not version.startswith("v")
    assert isinstance(tag, str) and GIT_SHA.match(tag)


def test_sourceignore_ships_the_flux_tree_and_nothing_else():
    def ignored(paths: list[str]) -> set[str]:
        result = subprocess.run(
            ["git", "-c", "core.excludesFile=.sourceignore", "check-ignore", "--no-index", *paths],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode in (0, 1), result.stderr
        return set(result.stdout.split())

    shipped = [str(p.relative_to(REPO)) for root in ("clusters", "infrastructure", "apps") for p in (REPO / root).rglob("*.yaml")]
    shipped = [p for p in shipped if not p.startswith(("clusters/tests/", "apps/base/task-api/chart/"))]
    assert ignored(shipped) == set()
    dropped = ["Cargo.toml", "crates/task-api/Dockerfile", "docs/gitops.md", "opentofu/README.md",
               ".github/workflows/ci.yaml", "clusters/tests/fixtures/cluster-vars-dev.yaml",
               "apps/base/task-api/chart/values.yaml", "README.md"]
    assert ignored(dropped) == set(dropped)


def test_yamllint_is_clean():
    """Errors anywhere fail; in the Flux tree warnings fail too."""
    everything = subprocess.run(["yamllint", "-f", "parsable", "."], cwd=REPO, capture_output=True, text=True, check=False)
    assert everything.returncode == 0, everything.stdout + everything.stderr
    flux_tree = subprocess.run(
        ["yamllint", "-s", "-f", "parsable", "clusters", "infrastructure", "apps/dev", "apps/staging", "apps/prod",
         "apps/base/task-api/kustomization.yaml", "apps/base/task-api/release.yaml",
         "apps/base/task-api/repository.yaml", "apps/base/task-api/database-secret.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert flux_tree.returncode == 0, flux_tree.stdout + flux_tree.stderr


def test_every_manifest_file_is_reachable_from_a_cluster(rendered):
    """A YAML file under the Flux paths that no kustomization lists is dead code or a mistake."""
    listed: set[Path] = set()
    for root in ("clusters", "infrastructure", "apps"):
        for kustomization in (REPO / root).rglob("kustomization.yaml"):
            if "chart" in kustomization.parts or "tests" in kustomization.parts:
                continue
            spec = yaml.safe_load(kustomization.read_text())
            for entry in spec.get("resources", []):
                listed.add((kustomization.parent / entry).resolve())
            for patch in spec.get("patches", []):
                if "path" in patch:
                    listed.add((kustomization.parent / patch["path"]).resolve())
            for generator in spec.get("configMapGenerator", []):
                listed.update((kustomization.parent / f).resolve() for f in generator.get("files", []))
            listed.add(kustomization.resolve())
    for environment in ENVIRONMENTS:
        listed.update(p.resolve() for p in (REPO / "clusters" / environment).glob("*.yaml"))
    orphans = []
    for root in ("infrastructure", "apps", "clusters"):
        for path in (REPO / root).rglob("*"):
            if not path.is_file() or path.suffix not in (".yaml", ".yml", ".json"):
                continue
            if {"chart", "tests"} & set(path.relative_to(REPO).parts):
                continue
            if path.resolve() not in listed and path.parent.resolve() not in listed:
                orphans.append(str(path.relative_to(REPO)))
    assert orphans == []


LAYERS = ("flux-system", "infra-controllers", "infra-configs", "apps")


def _layer(origin: str) -> int:
    return LAYERS.index("apps" if origin.startswith("helm:") else origin)


def _existing_secret_names(value):
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("existingSecret", "existingSecretName") and isinstance(item, str) and item:
                yield item
            elif key == "existingSecret" and isinstance(item, dict) and item.get("name"):
                yield item["name"]
            else:
                yield from _existing_secret_names(item)
    elif isinstance(value, list):
        for item in value:
            yield from _existing_secret_names(item)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_no_layer_waits_for_a_later_layer(rendered, environment):
    """A HelmRelease that needs an object of a later Flux Kustomization can never become Ready
    while its own layer waits for it: the bootstrap of an empty cluster would deadlock."""
    result = rendered(environment)
    creators: dict[tuple[str, str, str], int] = {}
    for origin, obj in result.objects.values():
        meta = obj["metadata"]
        creators[(obj["kind"], meta.get("namespace") or "", meta["name"])] = _layer(origin)
        if obj["kind"] == "ExternalSecret":
            target = (obj["spec"].get("target") or {}).get("name", meta["name"])
            creators[("Secret", meta["namespace"], target)] = _layer(origin)
    problems = []
    for origin, release in flux_objects(result):
        if release["kind"] != "HelmRelease":
            continue
        own, namespace = _layer(origin), release["metadata"]["namespace"]
        needs = [("HelmRelease", d.get("namespace", namespace), d["name"]) for d in release["spec"].get("dependsOn") or []]
        needs += [(r["kind"], namespace, r["name"]) for r in release["spec"].get("valuesFrom") or []]
        needs += [("Secret", namespace, name) for name in _existing_secret_names(release["spec"].get("values") or {})]
        for need in needs:
            layer = creators.get(need)
            if layer is None or layer > own:
                problems.append(f"{object_id(release)} ({LAYERS[own]}) needs {need}, created by {LAYERS[layer] if layer is not None else 'nothing'}")
    assert problems == []


def _version_key(version: str) -> tuple:
    core, _, pre = version.lstrip("v").partition("-")
    return tuple(int(part) for part in core.split(".")) + ((1,) if not pre else (0, pre))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_promoted_chart_version_exists_in_this_repository(environment):
    """An environment can only run a chart version that has been written (and so published by
    CI); the offline render uses the chart in the working tree, which is that version or newer."""
    release = yaml.safe_load((REPO / "apps" / environment / "release.yaml").read_text())
    chart = yaml.safe_load((fluxtree.OWN_CHART / "Chart.yaml").read_text())
    assert _version_key(release["spec"]["chart"]["spec"]["version"]) <= _version_key(chart["version"])
