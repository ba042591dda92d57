"""values.schema.json makes a bad value fail at install time, before anything is applied."""

import pytest
import yaml

from chart_harness import CHART, helm_template, schema_error_paths

MINIMAL = CHART / "ci" / "minimal-values.yaml"


def template_with(tmp_path, override: dict):
    path = tmp_path / "override.yaml"
    path.write_text(yaml.safe_dump(override))
    return helm_template("-f", str(MINIMAL), "-f", str(path), check=False)


def test_minimal_values_render(tmp_path):
    assert template_with(tmp_path, {}).returncode == 0


REJECTED = {
    "replica count as a word": ({"replicaCount": "two"}, "replicaCount"),
    "replica count zero": ({"replicaCount": 0}, "replicaCount"),
    "image tag removed": ({"image": {"tag": None}}, "tag"),
    "image tag empty": ({"image": {"tag": ""}}, "image.tag"),
    "mutable image tag": ({"image": {"tag": "latest"}}, "image.tag"),
    "short git sha": ({"image": {"tag": "0123456"}}, "image.tag"),
    "digest without algorithm": ({"image": {"digest": "0" * 64}}, "image.digest"),
    "unknown top-level key": ({"replicas": 3}, "replicas"),
    "unknown config key": ({"config": {"devMode": True}}, "devMode"),
    "database URL in values": ({"database": {"url": "postgres://u:p@db/tasks"}}, "url"),
    "plain-http issuer": ({"config": {"oidcIssuerUrl": "http://auth.example.com"}}, "oidcIssuerUrl"),
    "unknown log format": ({"config": {"logFormat": "xml"}}, "logFormat"),
    "max inflight as string": ({"config": {"maxInflight": "512"}}, "maxInflight"),
    "no database source": ({"database": {"existingSecret": {"name": ""}}}, "existingSecret.name"),
    "external secret without key": (
        {"database": {"externalSecret": {"enabled": True, "remoteRef": {"key": ""}}}}, "remoteRef.key"),
    "plain-HTTP ingress": ({"ingress": {"enabled": True, "host": "tasks.example.com", "tls": False}}, "ingress.tls"),
    "budget without a limit": (
        {"podDisruptionBudget": {"enabled": True, "minAvailable": None, "maxUnavailable": None}}, "podDisruptionBudget"),
    "autoscaler minimum above maximum": (
        {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 3}}, "autoscaling.minReplicas"),
    "ingress without host": ({"ingress": {"enabled": True}}, "ingress.host"),
    "ingress and gateway together": (
        {"ingress": {"enabled": True, "host": "tasks.example.com"},
         "gateway": {"enabled": True, "parentRefs": [{"name": "public"}]}}, "allOf"),
    "gateway without parent": ({"gateway": {"enabled": True}}, "parentRefs"),
    "bad CIDR": ({"networkPolicy": {"databaseCIDRs": ["10.0.0.0"]}}, "databaseCIDRs"),
    "port out of range": ({"service": {"port": 70000}}, "service.port"),
    "unknown spread policy": ({"topologySpread": {"zone": {"whenUnsatisfiable": "Maybe"}}}, "whenUnsatisfiable"),
    "CPU target above 100%": ({"autoscaling": {"targetCPUUtilizationPercentage": 150}}, "targetCPUUtilizationPercentage"),
    "error ratio above 1": ({"prometheusRule": {"thresholds": {"errorRatio": 5}}}, "errorRatio"),
    "dashboard without enabled flag type": ({"dashboard": {"enabled": "yes"}}, "dashboard.enabled"),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_schema_rejects(tmp_path, case):
    override, needle = REJECTED[case]
    result = template_with(tmp_path, override)
    assert result.returncode != 0, f"{case}: accepted {override}"
    assert needle in schema_error_paths(result.stderr), f"{case}: error does not point at {needle}:\n{result.stderr}"


def test_schema_is_strict_at_every_object_level():
    """Every object in the schema that lists properties closes itself to unknown keys, except
    the free-form maps (labels, annotations, selectors' matchLabels, affinity, tolerations)."""
    import json

    schema = json.loads((CHART / "values.schema.json").read_text())
    open_objects = []

    def walk(node, path):
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node and node.get("additionalProperties") is not False:
                open_objects.append(path or "(root)")
            for key, value in node.items():
                walk(value, f"{path}.{key}" if key not in ("properties",) else path)
        elif isinstance(node, list):
            for item in node:
                walk(item, path)

    walk({k: v for k, v in schema.items() if k != "allOf"}, "")
    assert not open_objects, f"schema objects accepting unknown keys: {open_objects}"
