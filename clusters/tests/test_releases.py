"""What the charts make of the tree: every third-party HelmRelease rendered with its real chart
at the pinned version (releases.py), every pod that results (and every pod the controllers
create from templates) evaluated against its namespace's Pod Security level, every custom
resource validated against the CRD that installs it, and the versions that must follow the
cluster's Kubernetes minor."""

from __future__ import annotations

import re

import kubernetes_validate
import pytest

import fluxtree
import pod_security
import releases
import schema_check
import workloads
from fluxtree import ENVIRONMENTS, KIND_ENVIRONMENT, object_id

# The three clusters and the kind environment of the e2e workflow (clusters/ci).
RENDERED = ENVIRONMENTS + (KIND_ENVIRONMENT,)


def _all_objects(result: fluxtree.Rendered, renders: dict[str, releases.ReleaseRender]) -> list[tuple[str, dict]]:
    objects = list(result.objects.values())
    for key, render in renders.items():
        objects += [(f"chart:{key}", obj) for obj in render.objects]
    return objects


@pytest.mark.parametrize("environment", RENDERED)
def test_every_third_party_release_renders_with_its_real_chart(rendered, chart_renders, environment):
    renders = chart_renders(environment)
    third_party = [obj for origin, obj in rendered(environment).objects.values() if obj["kind"] == "HelmRelease"
                   and not origin.startswith("helm:")
                   and (obj["metadata"]["namespace"], obj["metadata"]["name"]) != fluxtree.OWN_HELMRELEASE]
    assert {object_id(r) for r in third_party} == set(renders)
    failures = {key: render.error for key, render in renders.items() if render.error}
    assert failures == {}
    assert all(render.objects for render in renders.values())


@pytest.mark.parametrize("environment", RENDERED)
def test_every_pod_is_admitted_by_its_namespaces_pod_security_level(rendered, chart_renders, environment):
    result = rendered(environment)
    kube_version = releases.kubernetes_version(environment)
    namespaces = {ns["metadata"]["name"]: ns for ns in result.of_kind("Namespace")}
    pods, problems = workloads.pods(_all_objects(result, chart_renders(environment)))
    assert len(pods) >= 15, "the charts render fewer pods than the platform runs"
    for pod in pods:
        level = pod_security.enforced_level(namespaces.get(pod.namespace))
        for violation in pod_security.evaluate(pod.metadata, pod.spec, level, kube_version):
            problems.append(f"{pod.where} (namespace {pod.namespace}, {level}): {violation}")
    assert problems == []


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_controller_created_pods_are_evaluated(rendered, chart_renders, environment):
    """The ARC listener, runner and kubernetes-mode job pods exist only once the controller
    acts; they must be part of the evaluation, in the namespaces they are created in."""
    pods, _ = workloads.pods(_all_objects(rendered(environment), chart_renders(environment)))
    made = {(p.where.split(" of ")[0], p.namespace) for p in pods if " of AutoscalingRunnerSet " in p.where}
    assert ("ARC listener", "arc-systems") in made
    assert ("ARC runner", "arc-runners") in made and ("ARC runner", "arc-runners-docker") in made
    assert ("job pod", "arc-runners") in made


@pytest.mark.parametrize("environment", RENDERED)
def test_custom_resources_match_the_crds_that_install_them(rendered, chart_renders, crd_registry, environment):
    registry = crd_registry(environment)
    problems = {}
    for origin, obj in _all_objects(rendered(environment), chart_renders(environment)):
        group = obj.get("apiVersion", "").rpartition("/")[0]
        if "." not in group or group.endswith(".k8s.io") and not registry.knows_group(group):
            continue  # core and built-in API groups: kubernetes-validate (test_flux_tree)
        if (group, obj.get("kind")) in schema_check.EXTERNAL_KINDS:
            continue
        found = registry.validate(obj)
        if found:
            problems[f"{origin}: {object_id(obj)}"] = found
    assert problems == {}


@pytest.mark.parametrize("environment", RENDERED)
def test_chart_rendered_core_objects_match_the_kubernetes_schema(chart_renders, environment):
    minor = ".".join(releases.kubernetes_version(environment).split(".")[:2])
    problems = {}
    for key, render in chart_renders(environment).items():
        for obj in render.objects:
            try:
                kubernetes_validate.validate(obj, minor, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                continue  # custom resources: the CRD check above
            except kubernetes_validate.ValidationError as error:
                problems[f"{key}: {object_id(obj)}"] = str(error).splitlines()[0]
    assert problems == {}


# --- version coupling ----------------------------------------------------------------------


def _minor(version: str) -> tuple[int, int]:
    major, minor = re.match(r"v?(\d+)\.(\d+)", version).groups()
    return int(major), int(minor)


def _images(render: releases.ReleaseRender) -> list[str]:
    found = []
    for obj in render.objects:
        template = pod_security.pod_template(obj)
        if template:
            found += [c.get("image", "") for c in pod_security._containers(template[1])]
    return found


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_components_coupled_to_the_kubernetes_minor_match_the_cluster(chart_renders, environment):
    """cluster-autoscaler supports only the Kubernetes minor of its own minor (its release
    policy); every environment's cluster minor comes from opentofu/environments/<env>."""
    cluster = _minor(releases.kubernetes_version(environment))
    renders = chart_renders(environment)
    autoscaler = [i for i in _images(renders["HelmRelease/kube-system/cluster-autoscaler"]) if "/cluster-autoscaler:" in i]
    assert autoscaler, "no cluster-autoscaler image rendered"
    assert {_minor(i.rsplit(":", 1)[1]) for i in autoscaler} == {cluster}, autoscaler


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_arc_controller_and_scale_sets_run_the_same_release(chart_renders, environment):
    renders = chart_renders(environment)
    controller = renders["HelmRelease/arc-systems/arc"].chart.version
    scale_sets = {key: r.chart.version for key, r in renders.items() if r.chart and r.chart.name == "gha-runner-scale-set"}
    assert scale_sets and set(scale_sets.values()) == {controller}, scale_sets


def test_every_environment_renders_for_the_same_kubernetes_minor_as_its_cluster():
    """Charts render and core objects validate for the minor the clusters run."""
    for environment in RENDERED:
        version = releases.kubernetes_version(environment)
        assert re.fullmatch(r"\d+\.\d+\.0", version)
        assert version.rsplit(".", 1)[0] == schema_check.KUBERNETES_SCHEMA_VERSION, environment
    assert releases.helm_version().startswith(releases.HELM_VERSION + "+")


# --- what the rendered configuration does ---------------------------------------------------


def _config(render: releases.ReleaseRender, key: str) -> dict:
    import yaml

    for obj in render.objects:
        if obj["kind"] == "ConfigMap" and key in (obj.get("data") or {}):
            return yaml.safe_load(obj["data"][key])
    raise AssertionError(f"{render.key} renders no ConfigMap with {key}")


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_trace_receivers_listen_for_otlp_only(chart_renders, environment):
    """Helm merges maps: a chart's default receivers stay unless the values remove them."""
    renders = chart_renders(environment)
    collector = _config(renders["HelmRelease/observability/otel-collector"], "relay")
    assert set(collector["receivers"]) == {"otlp"}
    for name, pipeline in collector["service"]["pipelines"].items():
        for part in ("receivers", "processors", "exporters"):
            undefined = set(pipeline.get(part) or []) - set(collector.get(part) or {})
            assert not undefined, f"pipeline {name} uses undefined {part} {undefined}"
    tempo = _config(renders["HelmRelease/observability/tempo"], "tempo.yaml")
    for name, receiver in tempo["distributor"]["receivers"].items():
        endpoints = re.findall(r"endpoint': '([^']+)'", str(receiver))
        if name != "otlp":
            assert endpoints and all(e.startswith("127.0.0.1:") for e in endpoints), f"tempo receiver {name}: {endpoints}"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_tempo_metrics_generator_has_processors(chart_renders, environment):
    tempo = _config(chart_renders(environment)["HelmRelease/observability/tempo"], "tempo.yaml")
    if "metrics_generator" in tempo:
        processors = (((tempo.get("overrides") or {}).get("defaults") or {}).get("metrics_generator") or {}).get("processors")
        assert {"service-graphs", "span-metrics"} <= set(processors or []), "the generator is on but produces nothing"


MIN_RUNNER_VERSION = (2, 336, 0)  # the workflows' `$/` references need it


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_runner_image_is_at_least_what_the_workflows_need(chart_renders, environment):
    pods, _ = workloads.pods(_all_objects(fluxtree.Rendered(environment), chart_renders(environment)))
    runners = [c["image"] for p in pods if p.where.startswith("ARC runner")
               for c in pod_security._containers(p.spec) if "/actions-runner:" in c.get("image", "")]
    assert runners
    for image in runners:
        version = tuple(int(x) for x in image.rsplit(":", 1)[1].split("."))
        assert version >= MIN_RUNNER_VERSION, image
