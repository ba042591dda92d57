"""Every object the chart renders, with every value set, is valid against its API schema:
core kinds with kubernetes-validate (strict: unknown fields fail) on the oldest supported and a
current Kubernetes, custom resources against the CRD schemas of prometheus-operator, External
Secrets and Gateway API. A kind with no schema fails; nothing is skipped."""

import copy

import kubernetes_validate
import pytest

from chart_harness import (
    KUBERNETES_VERSIONS,
    custom_resource_results,
    is_custom_resource,
    render,
    unknown_custom_resource_fields,
    validate_custom_resources,
)


def core_errors(obj: dict, version: str) -> list[str]:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"no schema for {obj['apiVersion']} {obj['kind']} in Kubernetes {version}: {error}"]
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(str(p) for p in error.path)}: {error.message}"]
    return []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_objects_match_the_kubernetes_schema(objects, version):
    failures = {}
    for obj in objects:
        if is_custom_resource(obj):
            continue
        errors = core_errors(obj, version)
        if errors:
            failures[f"{obj['kind']}/{obj['metadata']['name']}"] = errors
    assert not failures, failures


def test_custom_resources_match_their_crd_schema(objects, value_set, value_set_dir):
    custom = [o for o in objects if is_custom_resource(o)]
    results = custom_resource_results(value_set, value_set_dir)
    assert [(r["kind"], r["name"]) for r in results] == [(o["kind"], o["metadata"]["name"]) for o in custom]
    failures = {f"{r['kind']}/{r['name']}": r["errors"] for r in results if r["errors"]}
    assert not failures, failures


def test_every_custom_resource_kind_is_exercised(value_set_by_name):
    """The value sets together render each custom resource kind the chart can produce, so each
    one is schema-checked somewhere."""
    kinds = {o["kind"] for vs in value_set_by_name.values() for o in render(vs) if is_custom_resource(o)}
    assert kinds >= {"ServiceMonitor", "PrometheusRule", "ExternalSecret", "HTTPRoute"}, kinds


# The validators themselves must be able to fail: a broken object of each kind is rejected.
def test_core_validator_rejects_unknown_fields_and_wrong_types(value_set_by_name):
    deployment = next(o for o in render(value_set_by_name["ci/minimal-values.yaml"]) if o["kind"] == "Deployment")
    unknown = copy.deepcopy(deployment)
    unknown["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "forty"
    for broken in (unknown, wrong_type):
        assert core_errors(broken, KUBERNETES_VERSIONS[0]), "kubernetes-validate accepted a broken Deployment"


def test_unknown_kinds_fail_instead_of_being_skipped():
    unknown_core = {"apiVersion": "v1", "kind": "Sprocket", "metadata": {"name": "x"}}
    assert core_errors(unknown_core, KUBERNETES_VERSIONS[0])
    unknown_custom = {"apiVersion": "monitoring.coreos.com/v1", "kind": "Sprocket", "metadata": {"name": "x"}}
    (result,) = validate_custom_resources([unknown_custom])
    assert result["errors"], "an unknown custom kind must be an error"


def test_crd_validator_rejects_broken_custom_resources(value_set_by_name):
    prod = render(value_set_by_name["ci/prod-values.yaml"])
    dev = render(value_set_by_name["ci/dev-values.yaml"])
    monitor = copy.deepcopy(next(o for o in prod if o["kind"] == "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["interval"] = "every thirty seconds"
    external = copy.deepcopy(next(o for o in prod if o["kind"] == "ExternalSecret"))
    external["spec"]["secretStoreRef"]["kind"] = "Vault"
    route = copy.deepcopy(next(o for o in dev if o["kind"] == "HTTPRoute"))
    route["spec"]["rules"][0]["backendRefs"][0]["port"] = "http"
    rule = copy.deepcopy(next(o for o in prod if o["kind"] == "PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["for"] = "three minutes"
    results = validate_custom_resources([monitor, external, route, rule])
    accepted = [r["kind"] for r in results if not r["errors"]]
    assert not accepted, f"CRD validator accepted broken objects: {accepted}"


def test_custom_resources_have_no_fields_unknown_to_their_crd(objects):
    failures = {}
    for obj in objects:
        if is_custom_resource(obj):
            unknown = unknown_custom_resource_fields(obj)
            if unknown:
                failures[f"{obj['kind']}/{obj['metadata']['name']}"] = unknown
    assert not failures, failures


def test_unknown_field_check_finds_misspelt_keys(value_set_by_name):
    prod = render(value_set_by_name["ci/prod-values.yaml"])
    dev = render(value_set_by_name["ci/dev-values.yaml"])
    monitor = copy.deepcopy(next(o for o in prod if o["kind"] == "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["scrapeInterval"] = "30s"
    external = copy.deepcopy(next(o for o in prod if o["kind"] == "ExternalSecret"))
    external["spec"]["target"]["creationPolicyy"] = "Owner"
    route = copy.deepcopy(next(o for o in dev if o["kind"] == "HTTPRoute"))
    route["spec"]["rules"][0]["backendRef"] = []
    rule = copy.deepcopy(next(o for o in prod if o["kind"] == "PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["severity"] = "critical"
    expected = {
        "ServiceMonitor": "/spec/endpoints/0/scrapeInterval",
        "ExternalSecret": "/spec/target/creationPolicyy",
        "HTTPRoute": "/spec/rules/0/backendRef",
        "PrometheusRule": "/spec/groups/0/rules/0/severity",
    }
    for broken in (monitor, external, route, rule):
        assert unknown_custom_resource_fields(broken) == [expected[broken["kind"]]], broken["kind"]
