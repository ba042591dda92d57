"""The rule modules the platform checks rely on, each shown to reject what it exists for:
Pod Security (pod_security.py, after kubernetes/pod-security-admission policy/check_*.go),
CRD schema validation (crd_schema.py), Flux's release semantics (releases.py) and the pods
ARC creates (workloads.py)."""

from __future__ import annotations

import copy

import pytest

import crd_schema
import fluxtree
import pod_security
import releases
import workloads

RESTRICTED_CONTAINER = {
    "name": "app",
    "image": "example/app:1.0.0",
    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
}
RESTRICTED_POD = {
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [RESTRICTED_CONTAINER],
    "volumes": [{"name": "tmp", "emptyDir": {}}],
}


def _with(change) -> dict:
    spec = copy.deepcopy(RESTRICTED_POD)
    change(spec)
    return spec


def _container(spec: dict) -> dict:
    return spec["containers"][0]


# (case, mutation of a restricted-compliant pod, the check that must fire, lowest level it fails)
VIOLATIONS = [
    ("hostNetwork", lambda s: s.update(hostNetwork=True), "hostNamespaces", "baseline"),
    ("hostPID", lambda s: s.update(hostPID=True), "hostNamespaces", "baseline"),
    ("privileged", lambda s: _container(s)["securityContext"].update(privileged=True), "privileged", "baseline"),
    ("SYS_ADMIN", lambda s: _container(s)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
     "capabilities_baseline", "baseline"),
    ("hostPath", lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "hostPathVolumes", "baseline"),
    ("hostPort", lambda s: _container(s).update(ports=[{"containerPort": 80, "hostPort": 80}]), "hostPorts", "baseline"),
    ("apparmor unconfined", lambda s: s["securityContext"].update(appArmorProfile={"type": "Unconfined"}),
     "appArmorProfile", "baseline"),
    ("selinux user", lambda s: _container(s)["securityContext"].update(seLinuxOptions={"user": "root"}),
     "seLinuxOptions", "baseline"),
    ("procMount", lambda s: _container(s)["securityContext"].update(procMount="Unmasked"), "procMount", "baseline"),
    ("seccomp unconfined", lambda s: s["securityContext"].update(seccompProfile={"type": "Unconfined"}),
     "seccompProfile_baseline", "baseline"),
    ("unsafe sysctl", lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
     "sysctls", "baseline"),
    ("probe host", lambda s: _container(s).update(livenessProbe={"httpGet": {"host": "10.0.0.1", "port": 80}}),
     "hostProbesAndHostLifecycle", "baseline"),
    ("windows hostProcess", lambda s: s["securityContext"].update(windowsOptions={"hostProcess": True}),
     "windowsHostProcess", "baseline"),
    ("nfs volume", lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
     "restrictedVolumes", "restricted"),
    ("escalation unset", lambda s: _container(s)["securityContext"].pop("allowPrivilegeEscalation"),
     "allowPrivilegeEscalation", "restricted"),
    ("runAsNonRoot unset", lambda s: s["securityContext"].pop("runAsNonRoot"), "runAsNonRoot", "restricted"),
    ("container runAsNonRoot false", lambda s: _container(s)["securityContext"].update(runAsNonRoot=False),
     "runAsNonRoot", "restricted"),
    ("runAsUser 0", lambda s: _container(s)["securityContext"].update(runAsUser=0), "runAsUser", "restricted"),
    ("seccomp unset", lambda s: s["securityContext"].pop("seccompProfile"), "seccompProfile_restricted", "restricted"),
    ("drop ALL missing", lambda s: _container(s)["securityContext"].pop("capabilities"),
     "capabilities_restricted", "restricted"),
    ("adds CHOWN", lambda s: _container(s)["securityContext"]["capabilities"].update(add=["CHOWN"]),
     "capabilities_restricted", "restricted"),
    ("init container escalates", lambda s: s.update(initContainers=[{"name": "init", "image": "x"}]),
     "allowPrivilegeEscalation", "restricted"),
]


OVERRIDDEN_BY = {"capabilities_baseline": "capabilities_restricted", "hostPathVolumes": "restrictedVolumes",
                 "seccompProfile_baseline": "seccompProfile_restricted"}


def test_a_restricted_pod_passes_every_level():
    for level in pod_security.LEVELS:
        assert pod_security.evaluate({}, RESTRICTED_POD, level, "1.34.0") == []


@pytest.mark.parametrize(("case", "change", "check", "lowest"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_pod_security_rule_fires_at_its_level(case, change, check, lowest):
    spec = _with(change)
    for level in pod_security.LEVELS:
        fired = {v.check for v in pod_security.evaluate({}, spec, level, "1.34.0")}
        # At restricted, a restricted check replaces its baseline counterpart (OverrideCheckIDs).
        expected = {check} | ({OVERRIDDEN_BY[check]} if level == "restricted" and check in OVERRIDDEN_BY else set())
        if pod_security.LEVELS.index(level) >= pod_security.LEVELS.index(lowest):
            assert expected & fired, f"{case}: {check} did not fire at {level} ({fired})"
        else:
            assert check not in fired, f"{case}: {check} fired at {level}"


def test_pod_level_settings_cover_containers_and_container_settings_override_them():
    # seccomp and runAsNonRoot at pod level satisfy every container...
    assert pod_security.evaluate({}, RESTRICTED_POD, "restricted", "1.34.0") == []
    # ...and a container setting that contradicts them still fails.
    spec = _with(lambda s: _container(s)["securityContext"].update(seccompProfile={"type": "Unconfined"}))
    assert {v.check for v in pod_security.evaluate({}, spec, "restricted", "1.34.0")} == {"seccompProfile_restricted"}


def test_pod_security_checks_follow_the_cluster_minor():
    probe = _with(lambda s: _container(s).update(readinessProbe={"tcpSocket": {"host": "1.2.3.4", "port": 1}}))
    assert pod_security.evaluate({}, probe, "baseline", "1.33.0") == []  # introduced in 1.34
    assert pod_security.evaluate({}, probe, "baseline", "1.34.0")
    sysctl = _with(lambda s: s["securityContext"].update(sysctls=[{"name": "net.ipv4.tcp_rmem", "value": "1"}]))
    assert pod_security.evaluate({}, sysctl, "baseline", "1.31.0")
    assert pod_security.evaluate({}, sysctl, "baseline", "1.32.0") == []


def test_unlabelled_namespaces_get_the_cluster_default():
    assert pod_security.enforced_level(None) == "privileged"
    labelled = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    assert pod_security.enforced_level(labelled) == "restricted"


# --- CRD schemas ---------------------------------------------------------------------------

WIDGET_CRD = {
    "spec": {
        "group": "example.com",
        "names": {"kind": "Widget"},
        "scope": "Namespaced",
        "versions": [
            {"name": "v1", "served": True, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "required": ["size"],
                        "properties": {
                            "size": {"type": "integer", "minimum": 1},
                            "mode": {"type": "string", "enum": ["a", "b"]},
                            "port": {"x-kubernetes-int-or-string": True},
                            "note": {"type": "string", "nullable": True},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "values": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            "items": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}}}},
                        },
                    }
                },
            }}},
            {"name": "v0", "served": False},
        ],
    }
}


def _widget(spec: dict, version: str = "v1") -> dict:
    return {"apiVersion": f"example.com/{version}", "kind": "Widget", "metadata": {"name": "w", "namespace": "n"}, "spec": spec}


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"size": 1, "colour": "red"}, "/spec/colour: field not in the CRD schema"),
        ({"size": 1, "items": [{"n": "x", "m": 1}]}, "/spec/items/0/m: field not in the CRD schema"),
        ({}, "/spec/size: required"),
        ({"size": "1"}, "/spec/size: must be integer"),
        ({"size": 0}, "/spec/size: below 1"),
        ({"size": 1, "mode": "c"}, "is not one of"),
        ({"size": 1, "port": 1.5}, "integer or a string"),
        ({"size": 1, "labels": {"a": 1}}, "/spec/labels/a: must be string"),
        ({"size": 1, "mode": None}, "null is not allowed"),
    ],
)
def test_crd_schema_rejects(spec, needle):
    problems = crd_schema.Registry([WIDGET_CRD]).validate(_widget(spec))
    assert any(needle in p for p in problems), problems


def test_crd_schema_accepts_what_the_schema_preserves_and_knows_versions():
    registry = crd_schema.Registry([WIDGET_CRD])
    ok = _widget({"size": 2, "mode": "a", "port": "http", "note": None, "labels": {"a": "b"}, "values": {"any": {"x": 1}}})
    assert registry.validate(ok) == []
    assert "not a served version" in registry.validate(_widget({"size": 1}, "v0"))[0]
    assert "no CRD installs" in registry.validate({**ok, "kind": "Gadget"})[0]
    assert "required for a namespaced kind" in " ".join(registry.validate({**ok, "metadata": {"name": "w"}}))


# --- Flux release semantics ----------------------------------------------------------------


def _release(spec: dict, name: str = "app", namespace: str = "team") -> dict:
    return {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_release_name_and_namespace_follow_helm_controller():
    assert releases.release_identity(_release({})) == ("app", "team")
    assert releases.release_identity(_release({"targetNamespace": "other"})) == ("other-app", "other")
    assert releases.release_identity(_release({"targetNamespace": "other", "releaseName": "x"})) == ("x", "other")
    assert releases.release_identity(_release({"storageNamespace": "flux-system"})) == ("app", "team")
    long_name, _ = releases.release_identity(_release({"targetNamespace": "n" * 30}, name="m" * 30))
    assert len(long_name) <= 53


def test_values_from_references_then_inline_values():
    tree = fluxtree.Rendered("dev")
    tree.add("x", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "base", "namespace": "team"},
                   "data": {"values.yaml": "a: {b: 1, c: 2}\nlist: [1, 2]\n", "host": "h.example.com"}})
    release = _release({
        "valuesFrom": [
            {"kind": "ConfigMap", "name": "base"},
            {"kind": "ConfigMap", "name": "base", "valuesKey": "host", "targetPath": "ingress.host"},
            {"kind": "ConfigMap", "name": "absent", "optional": True},
        ],
        "values": {"a": {"c": 3}, "list": [9]},
    })
    assert releases.flux_values(release, tree) == {"a": {"b": 1, "c": 3}, "list": [9], "ingress": {"host": "h.example.com"}}
    with pytest.raises(fluxtree.RenderError):
        releases.flux_values(_release({"valuesFrom": [{"kind": "Secret", "name": "absent"}]}), tree)


def test_a_chart_missing_from_registry_and_mirror_is_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv(releases.MIRROR_ENV, str(tmp_path))
    monkeypatch.setenv("TASK_PLATFORM_CHART_PULL", "0")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    releases.locate.cache_clear()
    releases._reachable.cache_clear()
    try:
        with pytest.raises(fluxtree.RenderError, match="not found"):
            releases.locate(releases.Chart("loki", "6.45.2", "https://grafana.github.io/helm-charts"))
    finally:
        releases.locate.cache_clear()
        releases._reachable.cache_clear()


# --- pods ARC creates ----------------------------------------------------------------------


def test_arc_listener_pod_takes_the_templates_security_context_and_nothing_else():
    runner_set = {"apiVersion": "actions.github.com/v1alpha1", "kind": "AutoscalingRunnerSet",
                  "metadata": {"name": "s", "namespace": "arc-runners"}, "spec": {"template": {"spec": {"containers": []}}}}
    controller = {"kind": "Deployment", "metadata": {"name": "c", "namespace": "arc-systems",
                                                      "labels": {"app.kubernetes.io/part-of": "gha-rs-controller"}}}
    pods, problems = workloads.pods([("t", runner_set), ("t", controller)])
    listener = next(p for p in pods if p.where.startswith("ARC listener"))
    assert problems == [] and listener.namespace == "arc-systems"
    assert pod_security.evaluate(listener.metadata, listener.spec, "restricted", "1.34.0"), "the default listener is not restricted"
    runner_set["spec"]["listenerTemplate"] = {"spec": {"securityContext": RESTRICTED_POD["securityContext"],
                                                       "containers": [{"name": "listener", "securityContext": RESTRICTED_CONTAINER["securityContext"]}]}}
    pods, _ = workloads.pods([("t", runner_set), ("t", controller)])
    listener = next(p for p in pods if p.where.startswith("ARC listener"))
    assert pod_security.evaluate(listener.metadata, listener.spec, "restricted", "1.34.0") == []
    assert listener.spec["containers"][0]["image"].startswith("ghcr.io/actions/")


# --- the bootstrap sync the Flux Operator generates ----------------------------------------


def test_flux_instance_sync_becomes_the_root_gitrepository_and_kustomization():
    instance = {"apiVersion": "fluxcd.controlplane.io/v1", "kind": "FluxInstance",
                "metadata": {"name": "flux", "namespace": "flux-system"},
                "spec": {"sync": {"kind": "GitRepository", "url": "https://github.com/o/r.git", "ref": "refs/heads/main",
                                  "path": "clusters/dev", "pullSecret": "flux-system", "interval": "1m"}}}
    repository, kustomization = fluxtree.flux_instance_sync([instance])
    assert repository["spec"]["ref"] == {"branch": "main"}
    assert repository["spec"]["secretRef"] == {"name": "flux-system"}
    assert kustomization["spec"]["path"] == "./clusters/dev"
    assert kustomization["spec"]["sourceRef"] == {"kind": "GitRepository", "name": "flux-system"}
    assert fluxtree.flux_instance_sync([]) == []


def test_a_missing_component_fails_the_build(tmp_path):
    with pytest.raises(fluxtree.RenderError, match="does not exist"):
        fluxtree.build_with_components(fluxtree.REPO / "infrastructure" / "configs" / "dev", ["../../components/absent"])
