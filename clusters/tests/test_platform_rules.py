"""Rules an empty cluster needs to come up and stay observable: layer timeouts that cover
the install order, failure notifications that do not depend on what they report, runner scale
sets that belong to one environment, runner egress, and drift detection on every release."""

from __future__ import annotations

import ipaddress
import re

import pytest

import fluxtree
from fluxtree import ENVIRONMENTS, object_id

DEFAULT_HELM_TIMEOUT = "5m"  # helm-controller's default when spec.timeout is unset


def _seconds(duration: str) -> float:
    total = 0.0
    for value, unit in re.findall(r"(\d+(?:\.\d+)?)(h|m|s|ms)", duration):
        total += float(value) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total


def _releases_of(result: fluxtree.Rendered, layer: str) -> dict[str, dict]:
    return {object_id(o): o for origin, o in result.objects.values() if origin == layer and o["kind"] == "HelmRelease"}


def longest_chain(releases: dict[str, dict]) -> tuple[float, list[str]]:
    """(seconds, chain) of the longest dependsOn chain, each release at its own timeout."""
    memo: dict[str, tuple[float, list[str]]] = {}

    def walk(key: str) -> tuple[float, list[str]]:
        if key not in memo:
            release = releases[key]
            namespace = release["metadata"]["namespace"]
            own = _seconds(release["spec"].get("timeout", DEFAULT_HELM_TIMEOUT))
            best = (0.0, [])
            for dep in release["spec"].get("dependsOn") or []:
                dep_key = f"HelmRelease/{dep.get('namespace', namespace)}/{dep['name']}"
                if dep_key in releases:
                    best = max(best, walk(dep_key))
            memo[key] = (best[0] + own, best[1] + [key])
        return memo[key]

    return max((walk(k) for k in releases), default=(0.0, []))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_layer_timeouts_cover_their_longest_install_chain(rendered, environment):
    result = rendered(environment)
    short = {}
    for name, ks in result.kustomizations.items():
        if not ks["spec"].get("wait"):
            continue
        seconds, chain = longest_chain(_releases_of(result, name))
        if _seconds(ks["spec"]["timeout"]) < seconds:
            short[name] = f"timeout {ks['spec']['timeout']} < {seconds / 60:.0f}m along {' -> '.join(chain)}"
    assert short == {}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_failure_notifications_do_not_depend_on_the_platform(rendered, environment):
    """The Kustomization that applies Flux's Alerts and Providers depends on no other layer,
    and a Provider's receiver is neither created by a platform layer nor served by one."""
    result = rendered(environment)
    problems = []
    alerts = [(origin, o) for origin, o in result.objects.values() if o["kind"] == "Alert"]
    assert alerts, "no Flux Alert"
    platform_namespaces = {o["metadata"]["namespace"] for origin, o in result.objects.values()
                           if o["kind"] == "HelmRelease" and origin not in ("flux-system",)}
    for origin, alert in alerts:
        layer = result.kustomizations.get(origin)
        if layer is None or layer["spec"].get("dependsOn"):
            problems.append(f"{object_id(alert)} is applied by {origin}, which waits for {layer and layer['spec'].get('dependsOn')}")
        provider_key = f"Provider/{alert['metadata']['namespace']}/{alert['spec']['providerRef']['name']}"
        origin_provider, provider = result.objects.get(provider_key, (None, None))
        if provider is None:
            problems.append(f"{object_id(alert)}: {provider_key} missing")
            continue
        if origin_provider != origin:
            problems.append(f"{provider_key} is applied by {origin_provider}, not with its Alert")
        secret = (provider["spec"].get("secretRef") or {}).get("name")
        for creator, obj in result.objects.values():
            created = obj["kind"] == "Secret" and obj["metadata"]["name"] == secret or (
                obj["kind"] == "ExternalSecret" and (obj["spec"].get("target") or {}).get("name", obj["metadata"]["name"]) == secret)
            if secret and created and obj["metadata"].get("namespace") == provider["metadata"]["namespace"]:
                problems.append(f"{provider_key}: its Secret {secret} is made by {creator}, a layer it must not need")
        address = provider["spec"].get("address", "")
        host = re.sub(r"^[a-z]+://", "", address).split("/")[0].split(":")[0]
        if any(host.endswith(f".{ns}") or f".{ns}.svc" in host for ns in platform_namespaces):
            problems.append(f"{provider_key} posts to {address}, served by a platform release")
    assert problems == []


def test_runner_scale_sets_are_distinct_per_environment(rendered):
    names = {}
    for environment in ENVIRONMENTS:
        result = rendered(environment)
        for release in result.of_kind("HelmRelease"):
            name = (release["spec"].get("values") or {}).get("runnerScaleSetName")
            if name:
                assert environment in name, f"{environment}: scale set {name} does not name its environment"
                assert name not in names, f"scale set {name} registered by {names.get(name)} and {environment}"
                names[name] = environment
    assert len(names) == 2 * len(ENVIRONMENTS)


# --- runner egress -------------------------------------------------------------------------


def _peer_allows(peer: dict, ip: str | None, namespace_labels: dict | None, pod_labels: dict | None) -> bool:
    if "ipBlock" in peer:
        if ip is None:
            return False
        block = peer["ipBlock"]
        address = ipaddress.ip_address(ip)
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except") or [])
    if namespace_labels is None:
        return False
    ns_selector = peer.get("namespaceSelector")
    ok_ns = ns_selector is not None and all(namespace_labels.get(k) == v for k, v in (ns_selector.get("matchLabels") or {}).items())
    pod_selector = peer.get("podSelector") or {}
    ok_pod = all((pod_labels or {}).get(k) == v for k, v in (pod_selector.get("matchLabels") or {}).items())
    return ok_ns and ok_pod


def egress_allowed(policies: list[dict], ip: str | None, port: int, protocol: str = "TCP",
                   namespace_labels: dict | None = None, pod_labels: dict | None = None) -> bool:
    """NetworkPolicy semantics for a pod that every policy here selects: no egress policy
    means allowed; otherwise some rule must allow the peer and the port."""
    egress = [p for p in policies if "Egress" in (p["spec"].get("policyTypes") or [])]
    if not egress:
        return True
    for policy in egress:
        for rule in policy["spec"].get("egress") or []:
            ports = rule.get("ports")
            port_ok = not ports or any(p.get("port") == port and p.get("protocol", "TCP") == protocol for p in ports)
            peers = rule.get("to")
            peer_ok = not peers or any(_peer_allows(peer, ip, namespace_labels, pod_labels) for peer in peers)
            if port_ok and peer_ok:
                return True
    return False


@pytest.mark.parametrize("environment", ENVIRONMENTS)
@pytest.mark.parametrize("namespace", ["arc-runners", "arc-runners-docker"])
def test_runner_egress_reaches_github_and_dns_but_not_the_vpc_or_metadata(rendered, environment, namespace):
    result = rendered(environment)
    variables = fluxtree.cluster_vars(environment)
    policies = [o for o in result.of_kind("NetworkPolicy") if o["metadata"]["namespace"] == namespace
                and o["spec"].get("podSelector") == {}]
    vpc = ipaddress.ip_network(variables["vpc_cidr"])
    in_vpc = str(vpc.network_address + 1234)
    dns_ns = {"kubernetes.io/metadata.name": "kube-system"}
    assert egress_allowed(policies, None, 53, "UDP", dns_ns, {"k8s-app": "kube-dns"})
    assert egress_allowed(policies, "140.82.112.3", 443)  # github.com
    assert not egress_allowed(policies, "169.254.169.254", 80), "instance metadata reachable"
    assert not egress_allowed(policies, in_vpc, 5432), "database port in the VPC reachable"
    assert not egress_allowed(policies, in_vpc, 80), "VPC services reachable"
    assert not egress_allowed(policies, "140.82.112.3", 22)
    assert not egress_allowed(policies, None, 8080, "TCP", {"kubernetes.io/metadata.name": "task-api"}, {})
    ingress = [p for p in policies if "Ingress" in (p["spec"].get("policyTypes") or []) and not p["spec"].get("ingress")]
    assert ingress, "runners accept ingress"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_release_detects_drift(rendered, environment):
    missing = [object_id(r) for r in rendered(environment).of_kind("HelmRelease")
               if (r["spec"].get("driftDetection") or {}).get("mode") != "enabled"]
    assert missing == []


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_http01_solvers_get_a_load_balancer_lets_encrypt_can_reach(rendered, environment):
    """The ALB controller makes internal load balancers unless told otherwise; an HTTP-01
    challenge served there never validates."""
    problems = []
    for issuer in rendered(environment).of_kind("ClusterIssuer"):
        for solver in ((issuer["spec"].get("acme") or {}).get("solvers") or []):
            ingress = (solver.get("http01") or {}).get("ingress")
            if ingress and ingress.get("ingressClassName") == "alb":
                annotations = ((ingress.get("ingressTemplate") or {}).get("metadata") or {}).get("annotations") or {}
                if annotations.get("alb.ingress.kubernetes.io/scheme") != "internet-facing":
                    problems.append(object_id(issuer))
    assert problems == []
