"""Assertions on what the chart renders, for every value set: the production guarantees of the
workload, its security, its network exposure and its observability."""

import ipaddress
import json
import re

import pytest

from chart_harness import RELEASE_NAME, only, render, values_of

# The service's Prometheus metrics (docs: the contract shared by the service and its alerts).
SERVICE_METRICS = {
    "task_api_http_requests_total",
    "task_api_http_request_duration_seconds",
    "task_api_http_requests_in_flight",
    "task_api_http_requests_rejected_total",
    "task_api_db_pool_connections",
    "task_api_db_pool_max_connections",
    "task_api_db_up",
    "task_api_auth_failures_total",
    "task_api_build_info",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def metric_names_in(text: str) -> set[str]:
    names = set()
    for name in re.findall(r"\btask_api_[a-z_]+\b", text):
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in SERVICE_METRICS:
                name = name[: -len(suffix)]
        names.add(name)
    return names


def pod_spec(objects):
    return only(objects, "Deployment")["spec"]["template"]["spec"]


def container(objects):
    (main,) = pod_spec(objects)["containers"]
    return main


def env_of(objects) -> dict:
    return {e["name"]: e for e in container(objects)["env"]}


# --- workload -------------------------------------------------------------------------------


def test_pod_security_context_is_restricted(objects):
    spec = pod_spec(objects)
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == 65532
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")


def test_container_security_context_is_restricted(objects):
    ctx = container(objects)["securityContext"]
    assert ctx["runAsNonRoot"] is True
    assert ctx["runAsUser"] == 65532
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["privileged"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}


def test_probes_use_the_admin_port(objects):
    main = container(objects)
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"http": 8080, "admin": 9090}
    expected = {"livenessProbe": "/livez", "readinessProbe": "/readyz", "startupProbe": "/livez"}
    for probe, path in expected.items():
        get = main[probe]["httpGet"]
        assert get["path"] == path, probe
        assert get["port"] in ("admin", 9090), probe
    assert main["readinessProbe"]["timeoutSeconds"] <= main["readinessProbe"]["periodSeconds"]


def test_listeners_and_dev_mode(objects):
    env = env_of(objects)
    assert env["TASK_API_DEV_MODE"]["value"] == "false"
    assert env["TASK_API_LISTEN"]["value"] == "0.0.0.0:8080"
    assert env["TASK_API_ADMIN_LISTEN"]["value"] == "0.0.0.0:9090"
    assert env["OIDC_ISSUER_URL"]["value"].startswith("https://")
    assert env["OIDC_AUDIENCE"]["value"]
    assert env["TASK_API_LOG_FORMAT"]["value"] == "json" or env["TASK_API_LOG_FORMAT"]["value"] == "pretty"
    names = [e["name"] for e in container(objects)["env"]]
    assert len(names) == len(set(names)), "an environment variable is set twice"


def test_config_values_reach_the_environment(value_set, objects):
    config = values_of(value_set)["config"]
    env = env_of(objects)
    mapping = {
        "TASK_API_MAX_INFLIGHT": config["maxInflight"],
        "TASK_API_DB_MAX_CONNECTIONS": config["dbMaxConnections"],
        "TASK_API_SHUTDOWN_GRACE_SECONDS": config["shutdownGraceSeconds"],
        "TASK_API_LOG_LEVEL": config["logLevel"],
        "OIDC_AUDIENCE": config["oidcAudience"],
    }
    for name, value in mapping.items():
        assert env[name]["value"] == str(value), name
    assert ("OTEL_EXPORTER_OTLP_ENDPOINT" in env) == bool(config["otlpEndpoint"])
    assert ("TASK_API_LOKI_URL" in env) == bool(config["lokiUrl"])


def test_graceful_termination_outlasts_the_drain(value_set, objects):
    config = values_of(value_set)["config"]
    spec = pod_spec(objects)
    sleep = container(objects)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert sleep == config["preStopSleepSeconds"] and sleep > 0
    # SIGTERM arrives after the preStop sleep; the service then drains for shutdownGraceSeconds.
    assert spec["terminationGracePeriodSeconds"] > sleep + config["shutdownGraceSeconds"]


def test_rollout_never_reduces_capacity(objects):
    strategy = only(objects, "Deployment")["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0
    assert strategy["rollingUpdate"]["maxSurge"] >= 1


def test_replicas_are_owned_by_the_hpa_or_fixed(value_set, objects):
    values = values_of(value_set)
    deployment = only(objects, "Deployment")
    hpas = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    if values["autoscaling"]["enabled"]:
        assert "replicas" not in deployment["spec"], "with an HPA the Deployment must not pin replicas"
        (hpa,) = hpas
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                 "name": deployment["metadata"]["name"]}
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        cpu = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
        assert cpu[0]["resource"]["name"] == "cpu"
        assert container(objects)["resources"]["requests"]["cpu"], "CPU utilisation needs a CPU request"
    else:
        assert not hpas
        assert deployment["spec"]["replicas"] == values["replicaCount"]


def test_resources_are_requested_and_memory_limited(objects):
    resources = container(objects)["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


def test_production_like_sets_are_highly_available(production_value_set):
    objects = render(production_value_set)
    hpa = only(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] >= 2
    pdb = only(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == only(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    if "minAvailable" in pdb["spec"]:
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"], "the PDB would block every drain"
    else:
        assert pdb["spec"]["maxUnavailable"] >= 1
    zones = [c for c in pod_spec(objects)["topologySpreadConstraints"]
             if c["topologyKey"] == "topology.kubernetes.io/zone"]
    assert zones and zones[0]["maxSkew"] == 1


def test_defaults_are_production_grade(value_set_by_name):
    objects = render(value_set_by_name["ci/minimal-values.yaml"])
    hpa = only(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] >= 2
    assert only(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    keys = {c["topologyKey"] for c in pod_spec(objects)["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert pod_spec(objects)["nodeSelector"] == {"node-pool": "apps"}
    for kind in ("NetworkPolicy", "ServiceMonitor", "PrometheusRule", "ConfigMap", "ServiceAccount"):
        only(objects, kind)


def test_image_is_pinned_to_a_git_sha(value_set, objects):
    image = values_of(value_set)["image"]
    ref = container(objects)["image"]
    assert re.fullmatch(r"[^:@]+(:[0-9]+)?/[^:@]+:[0-9a-f]{40}(@sha256:[0-9a-f]{64})?", ref), ref
    assert ref.startswith(f"{image['repository']}:{image['tag']}")
    if image.get("digest"):
        assert ref.endswith("@" + image["digest"])


# --- secrets --------------------------------------------------------------------------------

SECRET_LOOKING = [
    re.compile(r"postgres(ql)?://[^\s\"']*:[^\s\"'@]+@"),  # URL with a password
    re.compile(r"sqlite://"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)\bpassword\s*[:=]\s*\S+"),
]


def test_no_secret_objects_or_secret_material(objects):
    assert not [o for o in objects if o["kind"] == "Secret"], "the chart must never render a Secret"
    text = json.dumps(objects)
    for pattern in SECRET_LOOKING:
        assert not pattern.search(text), f"rendered output contains secret-looking text: {pattern.pattern}"
    env = env_of(objects)
    assert set(env["DATABASE_URL"]) == {"name", "valueFrom"}, "DATABASE_URL must come from a Secret"
    assert "secretKeyRef" in env["DATABASE_URL"]["valueFrom"]


def test_external_secret_feeds_the_pod(value_set, objects):
    ref = env_of(objects)["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    externals = [o for o in objects if o["kind"] == "ExternalSecret"]
    if not values_of(value_set)["database"]["externalSecret"]["enabled"]:
        assert not externals
        assert ref["name"] == values_of(value_set)["database"]["existingSecret"]["name"]
        return
    (external,) = externals
    assert external["apiVersion"] == "external-secrets.io/v1"
    assert external["spec"]["target"]["name"] == ref["name"]
    assert [d["secretKey"] for d in external["spec"]["data"]] == [ref["key"]]
    annotations = only(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/database-externalsecret" in annotations


def test_service_account_is_dedicated(value_set, objects):
    account = only(objects, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert pod_spec(objects)["serviceAccountName"] == account["metadata"]["name"]
    assert account["metadata"]["name"] != "default"
    annotations = values_of(value_set)["serviceAccount"]["annotations"]
    assert account["metadata"].get("annotations", {}) == annotations


# --- exposure -------------------------------------------------------------------------------


def test_service_exposes_public_and_admin_ports(objects):
    service = only(objects, "Service")
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {"http": (8080, "http"), "admin": (9090, "admin")}
    assert service["spec"]["type"] == "ClusterIP"


def test_ingress_is_tls_only_with_redirect(value_set, objects):
    ingresses = [o for o in objects if o["kind"] == "Ingress"]
    values = values_of(value_set)["ingress"]
    if not values["enabled"]:
        assert not ingresses
        return
    assert values["tls"] is True
    (ingress,) = ingresses
    annotations = ingress["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"]) == [{"HTTP": 80}, {"HTTPS": 443}]
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert annotations["alb.ingress.kubernetes.io/ssl-policy"].startswith("ELBSecurityPolicy-TLS13")
    if values["certificateArn"]:
        assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == values["certificateArn"]
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert ingress["spec"]["tls"][0]["hosts"] == [values["host"]]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == values["host"]
    assert rule["http"]["paths"][0]["backend"]["service"]["port"] == {"name": "http"}, "only the public port"


def test_gateway_route_targets_the_public_port(value_set, objects):
    routes = [o for o in objects if o["kind"] == "HTTPRoute"]
    if not values_of(value_set)["gateway"]["enabled"]:
        assert not routes
        return
    (route,) = routes
    assert not [o for o in objects if o["kind"] == "Ingress"], "Ingress and HTTPRoute are alternatives"
    assert route["spec"]["parentRefs"]
    backends = [b for r in route["spec"]["rules"] for b in r["backendRefs"]]
    assert {(b["name"], b["port"]) for b in backends} == {(only(objects, "Service")["metadata"]["name"], 8080)}


def test_network_policy_admits_only_the_intended_peers(value_set, objects):
    values = values_of(value_set)["networkPolicy"]
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    if not values["enabled"]:
        pytest.fail(f"{value_set} disables the NetworkPolicy")
    (policy,) = policies
    spec = policy["spec"]
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert spec["podSelector"]["matchLabels"] == only(objects, "Deployment")["spec"]["selector"]["matchLabels"]

    by_port = {}
    for rule in spec["ingress"]:
        assert rule.get("from"), "an ingress rule without `from` admits every source"
        assert rule.get("ports"), "an ingress rule without `ports` opens every port"
        for port in rule["ports"]:
            by_port.setdefault(port["port"], []).extend(rule["from"])
    assert set(by_port) <= {"http", "admin"}
    admin_peers = by_port["admin"]
    assert admin_peers == [{"namespaceSelector": values["prometheusNamespaceSelector"],
                            "podSelector": values["prometheusPodSelector"]}]
    for peer in by_port.get("http", []):
        if "ipBlock" in peer:
            assert peer["ipBlock"]["cidr"] in values["loadBalancerSourceCIDRs"]
        else:
            assert peer.get("namespaceSelector") or peer.get("podSelector")

    allowed_egress_ports = {53, values["databasePort"], *values["oidcEgressPorts"], *values["collectorPorts"]}
    for rule in spec["egress"]:
        assert rule.get("to"), "an egress rule without `to` reaches everything"
        assert rule.get("ports"), "an egress rule without `ports` opens every port"
        assert {p["port"] for p in rule["ports"]} <= allowed_egress_ports
    dns = spec["egress"][0]
    assert {(p["port"], p["protocol"]) for p in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    if values["databaseCIDRs"]:
        db_rules = [r for r in spec["egress"] if {p["port"] for p in r["ports"]} == {values["databasePort"]}]
        assert db_rules and {p["ipBlock"]["cidr"] for p in db_rules[0]["to"]} == set(values["databaseCIDRs"])
    for rule in spec["egress"]:
        for peer in rule["to"]:
            if "ipBlock" in peer and ipaddress.ip_network(peer["ipBlock"]["cidr"]).prefixlen == 0:
                assert {p["port"] for p in rule["ports"]} == {443}, "the internet is reachable on 443 only"


def test_production_like_network_policy_names_its_peers(production_value_set):
    values = values_of(production_value_set)["networkPolicy"]
    assert values["databaseCIDRs"], "the database must be reachable"
    assert values["loadBalancerSourceCIDRs"] or values["ingressControllerNamespaceSelector"], (
        "the public port must admit the load balancer"
    )


# --- observability --------------------------------------------------------------------------


def test_service_monitor_scrapes_the_admin_port(value_set, objects):
    if not values_of(value_set)["serviceMonitor"]["enabled"]:
        return
    monitor = only(objects, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == only(objects, "Service")["spec"]["selector"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "admin" and endpoint["path"] == "/metrics"


REQUIRED_ALERT_SIGNALS = {
    "TaskApiDown": "up{",
    "TaskApiHighErrorRate": 'status=~"5..',
    "TaskApiHighLatency": "histogram_quantile(0.99",
    "TaskApiOverloaded": 'reason="overload"',
    "TaskApiPodRestarting": "kube_pod_container_status_restarts_total",
    "TaskApiDatabaseUnreachable": "task_api_db_up",
}


def test_alerts_cover_availability_errors_latency_overload_restarts_and_database(value_set, objects):
    if not values_of(value_set)["prometheusRule"]["enabled"]:
        return
    rules = [r for g in only(objects, "PrometheusRule")["spec"]["groups"] for r in g["rules"]]
    alerts = {r["alert"]: r for r in rules}
    for name, needle in REQUIRED_ALERT_SIGNALS.items():
        assert name in alerts, f"missing alert {name}"
        assert needle in alerts[name]["expr"], f"{name} does not look at {needle}"
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning")
        assert rule["annotations"]["summary"] and rule["annotations"]["runbook_url"].startswith("https://")
        assert rule["annotations"]["runbook_url"].endswith("#" + rule["alert"].lower())
        assert f'namespace="{only(objects, "Service")["metadata"]["namespace"]}"' in rule["expr"]
        unknown = metric_names_in(rule["expr"]) - SERVICE_METRICS
        assert not unknown, f"{rule['alert']} uses metrics the service does not export: {unknown}"


def test_alert_thresholds_come_from_values(value_set, objects):
    values = values_of(value_set)["prometheusRule"]
    if not values["enabled"]:
        return
    alerts = {r["alert"]: r for g in only(objects, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    thresholds = values["thresholds"]
    assert alerts["TaskApiHighErrorRate"]["expr"].rstrip().endswith(f"> {thresholds['errorRatio']}")
    assert alerts["TaskApiHighLatency"]["expr"].rstrip().endswith(f"> {thresholds['latencyP99Seconds']}")
    assert alerts["TaskApiOverloaded"]["expr"].rstrip().endswith(f"> {thresholds['overloadRatio']}")
    assert alerts["TaskApiPodRestarting"]["expr"].rstrip().endswith(f">= {thresholds['podRestarts']}")


def test_dashboard_is_discoverable_and_built_on_real_metrics(value_set, objects):
    values = values_of(value_set)["dashboard"]
    maps = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard")]
    if not values["enabled"]:
        assert not maps
        return
    (dashboard_map,) = maps
    assert dashboard_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    (raw,) = dashboard_map["data"].values()
    dashboard = json.loads(raw)
    assert dashboard["uid"] == "task-api"
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set().union(*(metric_names_in(e) for e in exprs))
    assert used <= SERVICE_METRICS, f"dashboard uses unknown metrics: {used - SERVICE_METRICS}"
    missing = SERVICE_METRICS - used
    assert not missing, f"dashboard shows nothing of {missing}"
    assert len(raw.encode()) < 256 * 1024, "a ConfigMap value above 256 KiB cannot be applied client-side"


def test_every_object_is_labelled_and_namespaced(objects):
    for obj in objects:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "task-api"
        assert labels["app.kubernetes.io/instance"] == RELEASE_NAME
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert obj["metadata"].get("namespace"), f"{obj['kind']} has no namespace"
