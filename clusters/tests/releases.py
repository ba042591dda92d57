"""Renders every third-party HelmRelease of an environment with its real chart, as Flux's
helm-controller would.

- Chart: the HelmRelease's chart (spec.chart.spec with its HelmRepository, or spec.chartRef
  to an OCIRepository, whose tag is the chart version) at the pinned version. It is pulled
  with `helm pull` when the registry is reachable; otherwise it is taken from the chart mirror
  named by $TASK_PLATFORM_CHART_MIRROR (default: ../shared/charts beside the repository).
  A chart or version found in neither is a failure, never a skip.
- Values: spec.valuesFrom in order (ConfigMap/Secret, valuesKey, targetPath, optional), then
  spec.values on top, after the Flux Kustomization's postBuild substitution (the objects come
  from fluxtree's render, which applied it).
- Release: name = spec.releaseName, else `<targetNamespace>-<name>` when targetNamespace is
  set, else the object's name; namespace = spec.targetNamespace, else the object's namespace
  (storageNamespace only holds the release record and does not change the render).
- Cluster: --kube-version of the environment's cluster (opentofu/environments/<env>) and
  --api-versions of the CRDs that exist when the release is installed: Flux's own, and those
  of the releases it depends on (directly or through its Flux Kustomization's dependsOn).
- Helm: the helm on PATH must be the one Flux embeds (HELM_VERSION); CRDs of crds/ are
  included unless install.crds is Skip; test hooks only when spec.test.enable.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import re
import socket
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import yaml

import fluxtree
from fluxtree import REPO, RenderError, load_documents, object_id

HELM_VERSION = "v4.1.4"  # the Helm of Flux v2.8.5's helm-controller
FLUX_VERSION = "v2.8.5"
MIRROR_ENV = "TASK_PLATFORM_CHART_MIRROR"
SHARED = REPO.parent / "shared"
FLUX_CRDS = SHARED / "crds" / "flux" / FLUX_VERSION
CLUSTER_SCOPED = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "StorageClass", "PriorityClass",
     "PersistentVolume", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService",
     "IngressClass", "RuntimeClass", "CSIDriver", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
     "ClusterIssuer", "ClusterSecretStore", "ClusterExternalSecret", "ClusterGenerator", "ClusterPushSecret"}
)


def mirror_dir() -> Path:
    return Path(os.environ.get(MIRROR_ENV) or SHARED / "charts")


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "task-platform" / "charts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def kubernetes_version(environment: str) -> str:
    return fluxtree.kubernetes_version(environment)


@functools.lru_cache(maxsize=None)
def helm_version() -> str:
    return fluxtree.run(["helm", "version", "--short"]).strip()


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    url: str  # https://... (HelmRepository) or oci://.../name (OCIRepository / OCI HelmRepository)

    def __str__(self) -> str:
        return f"{self.name}@{self.version} from {self.url}"


def chart_of(release: dict, rendered: fluxtree.Rendered) -> Chart:
    meta, spec = release["metadata"], release["spec"]
    if "chartRef" in spec:
        ref = spec["chartRef"]
        source = fluxtree_find(rendered, ref["kind"], ref["name"], ref.get("namespace", meta["namespace"]))
        if ref["kind"] != "OCIRepository" or source is None:
            raise RenderError(f"{object_id(release)}: chartRef {ref} does not resolve to an OCIRepository")
        tag = (source["spec"].get("ref") or {}).get("tag")
        if not tag:
            raise RenderError(f"{object_id(source)} has no tag: the chart version cannot be known offline")
        url = source["spec"]["url"]
        return Chart(url.rstrip("/").rsplit("/", 1)[1], tag, url)
    chart = spec["chart"]["spec"]
    ref = chart["sourceRef"]
    source = fluxtree_find(rendered, ref["kind"], ref["name"], ref.get("namespace", meta["namespace"]))
    if source is None or ref["kind"] != "HelmRepository":
        raise RenderError(f"{object_id(release)}: sourceRef {ref} does not resolve to a HelmRepository")
    url = source["spec"]["url"]
    if source["spec"].get("type") == "oci":
        url = url.rstrip("/") + "/" + chart["chart"]
    return Chart(chart["chart"], str(chart["version"]), url)


def fluxtree_find(rendered: fluxtree.Rendered, kind: str, name: str, namespace: str | None) -> dict | None:
    entry = rendered.objects.get(f"{kind}/{namespace or '_cluster'}/{name}")
    return entry[1] if entry else None


@functools.lru_cache(maxsize=None)
def _reachable(host: str) -> bool:
    if os.environ.get("TASK_PLATFORM_CHART_PULL", "1") == "0":
        return False
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


def _chart_metadata(path: Path) -> dict:
    with tarfile.open(path) as archive:
        member = next(m for m in archive.getmembers() if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml"))
        return yaml.safe_load(archive.extractfile(member).read())


@functools.lru_cache(maxsize=None)
def locate(chart: Chart) -> Path:
    """The packaged chart: pulled (cached per user) where the registry answers, else from the mirror."""
    cached = _cache_dir() / f"{chart.name}-{chart.version}.tgz"
    candidates = [cached]
    if not cached.exists() and _reachable(urlparse(chart.url).hostname or ""):
        with tempfile.TemporaryDirectory() as tmp:
            if chart.url.startswith("oci://"):
                command = ["helm", "pull", chart.url, "--version", chart.version, "-d", tmp]
            else:
                command = ["helm", "pull", chart.name, "--repo", chart.url, "--version", chart.version, "-d", tmp]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            pulled = list(Path(tmp).glob("*.tgz"))
            if result.returncode == 0 and len(pulled) == 1:
                os.replace(pulled[0], cached)
    candidates.append(mirror_dir() / f"{chart.name}-{chart.version}.tgz")
    for path in candidates:
        if path.is_file():
            metadata = _chart_metadata(path)
            if (metadata.get("name"), str(metadata.get("version"))) != (chart.name, chart.version):
                raise RenderError(f"{path} holds {metadata.get('name')}@{metadata.get('version')}, not {chart}")
            return path
    raise RenderError(f"chart {chart} not found: not pullable here and not in the mirror {mirror_dir()} (${MIRROR_ENV})")


def _merge(base: dict, override: dict) -> dict:
    """Helm's value merge (chartutil.MergeTables as Flux uses it): maps merge, the rest replaces."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _set_path(values: dict, path: str, value: str) -> None:
    parts = re.split(r"(?<!\\)\.", path)
    node = values
    for part in parts[:-1]:
        node = node.setdefault(part.replace("\\.", "."), {})
    node[parts[-1].replace("\\.", ".")] = value


def flux_values(release: dict, rendered: fluxtree.Rendered) -> dict:
    """The values helm-controller passes to Helm (valuesFrom in order, then spec.values)."""
    meta, spec = release["metadata"], release["spec"]
    values: dict = {}
    for ref in spec.get("valuesFrom") or []:
        source = fluxtree_find(rendered, ref["kind"], ref["name"], meta["namespace"])
        key = ref.get("valuesKey", "values.yaml")
        data = None
        if source is not None:
            if ref["kind"] == "Secret" and "data" in source:
                import base64

                data = {k: base64.b64decode(v).decode() for k, v in source["data"].items()}
                data.update(source.get("stringData") or {})
            else:
                data = {**(source.get("data") or {}), **(source.get("stringData") or {})}
        if data is None or key not in data:
            if ref.get("optional"):
                continue
            raise RenderError(f"{object_id(release)}: valuesFrom {ref['kind']}/{ref['name']} key {key} has no known content")
        if ref.get("targetPath"):
            _set_path(values, ref["targetPath"], data[key])
        else:
            values = _merge(values, yaml.safe_load(data[key]) or {})
    return _merge(values, spec.get("values") or {})


@dataclass
class ReleaseRender:
    key: str  # HelmRelease/<ns>/<name>
    release: dict
    chart: Chart | None = None
    name: str = ""
    namespace: str = ""
    values: dict = field(default_factory=dict)
    api_versions: tuple[str, ...] = ()
    objects: list[dict] = field(default_factory=list)
    error: str | None = None

    @property
    def crds(self) -> list[dict]:
        return [o for o in self.objects if o.get("kind") == "CustomResourceDefinition"]


def release_identity(release: dict) -> tuple[str, str]:
    meta, spec = release["metadata"], release["spec"]
    namespace = spec.get("targetNamespace") or meta["namespace"]
    name = spec.get("releaseName") or (f"{spec['targetNamespace']}-{meta['name']}" if spec.get("targetNamespace") else meta["name"])
    if len(name) > 53:  # helm-controller shortens long names with a hash suffix
        name = name[:40] + "-" + hashlib.sha256(name.encode()).hexdigest()[:12]
    return name, namespace


def crd_api_versions(crds: list[dict]) -> set[str]:
    found = set()
    for crd in crds:
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                found.add(f"{group}/{version['name']}")
                found.add(f"{group}/{version['name']}/{kind}")
    return found


@functools.lru_cache(maxsize=None)
def flux_crds() -> tuple[dict, ...]:
    if not FLUX_CRDS.is_dir():
        raise RenderError(f"Flux CRDs of {FLUX_VERSION} not found at {FLUX_CRDS}")
    return tuple(d for path in sorted(FLUX_CRDS.glob("*.yaml")) for d in load_documents(path.read_text()))


@functools.lru_cache(maxsize=None)
def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _render_cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = base / "task-platform" / "renders"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _helm_template(chart_path: Path, name: str, namespace: str, values: dict, kube_version: str,
                   api_versions: tuple[str, ...], include_crds: bool, tests: bool, values_files: list[str]) -> list[dict]:
    """`helm template` as helm-controller renders; the parsed output is cached on disk by the
    chart's digest, the Helm version and every input, so a second run parses nothing."""
    key = hashlib.sha256(json.dumps([_digest(chart_path), helm_version(), name, namespace, values, kube_version,
                                     api_versions, include_crds, tests, values_files], sort_keys=True, default=str).encode()).hexdigest()
    cached = _render_cache_dir() / f"{key}.json"
    if cached.exists():
        payload = json.loads(cached.read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            files = []
            if values_files:
                with tarfile.open(chart_path) as archive:
                    root = archive.getnames()[0].split("/")[0]
                    for index, name_in_chart in enumerate(values_files):
                        target = Path(tmp) / f"chart-values-{index}.yaml"
                        target.write_bytes(archive.extractfile(f"{root}/{name_in_chart}").read())
                        files += ["--values", str(target)]
            values_file = Path(tmp) / "values.json"
            values_file.write_text(json.dumps(values, default=str))
            command = ["helm", "template", name, str(chart_path), "--namespace", namespace, "--kube-version", kube_version,
                       *files, "--values", str(values_file)]
            command += ["--api-versions", ",".join(sorted(api_versions))] if api_versions else []
            command += ["--include-crds"] if include_crds else []
            command += [] if tests else ["--skip-tests"]
            try:
                payload = {"objects": load_documents(fluxtree.run(command)), "error": None}
            except RenderError as error:
                payload = {"objects": None, "error": str(error).replace(tmp, "<tmp>")}
        staging = cached.with_suffix(f".{os.getpid()}.tmp")
        staging.write_text(json.dumps(payload))
        os.replace(staging, cached)
    if payload["error"]:
        raise RenderError(payload["error"])
    return payload["objects"]


def _install_order(rendered: fluxtree.Rendered, releases: dict[str, dict]) -> tuple[list[str], dict[str, set[str]]]:
    """Releases in an order Flux can install them, and for each the releases installed before
    it for certain (its dependsOn closure and every release of a Flux Kustomization its own
    Kustomization depends on)."""
    layer_of = {key: rendered.objects[key][0] for key in releases}
    ks_deps: dict[str, set[str]] = {}

    def ks_closure(name: str) -> set[str]:
        if name not in ks_deps:
            ks_deps[name] = set()
            spec = (rendered.kustomizations.get(name) or {}).get("spec") or {}
            for dep in spec.get("dependsOn") or []:
                ks_deps[name] |= {dep["name"]} | ks_closure(dep["name"])
        return ks_deps[name]

    before: dict[str, set[str]] = {}

    def closure(key: str, seen: tuple[str, ...] = ()) -> set[str]:
        if key in seen:
            raise RenderError(f"dependsOn cycle through {' -> '.join(seen + (key,))}")
        if key not in before:
            release = releases[key]
            namespace = release["metadata"]["namespace"]
            found = {k for k, origin in layer_of.items() if origin in ks_closure(layer_of[key])}
            for dep in release["spec"].get("dependsOn") or []:
                dep_key = f"HelmRelease/{dep.get('namespace', namespace)}/{dep['name']}"
                if dep_key in releases:
                    found |= {dep_key} | closure(dep_key, seen + (key,))
            before[key] = found
        return before[key]

    for key in releases:
        closure(key)
    order = sorted(releases, key=lambda k: (len(before[k]), k))
    return order, before


def render_releases(rendered: fluxtree.Rendered, own_chart: bool = False) -> dict[str, ReleaseRender]:
    """Every third-party HelmRelease of the environment, rendered (errors kept per release)."""
    if not helm_version().startswith(HELM_VERSION + "+"):
        raise RenderError(f"helm on PATH is {helm_version()}, not {HELM_VERSION} (source .ci/tools.sh)")
    kube_version = kubernetes_version(rendered.environment)
    releases = {
        key: obj for key, (origin, obj) in rendered.objects.items()
        if obj.get("kind") == "HelmRelease" and not origin.startswith("helm:")
        and (own_chart or (obj["metadata"]["namespace"], obj["metadata"]["name"]) != fluxtree.OWN_HELMRELEASE)
    }
    order, before = _install_order(rendered, releases)
    base_api = crd_api_versions(list(flux_crds()))
    results: dict[str, ReleaseRender] = {}
    for key in order:
        release = releases[key]
        result = ReleaseRender(key, release)
        results[key] = result
        try:
            result.chart = chart_of(release, rendered)
            result.name, result.namespace = release_identity(release)
            result.values = flux_values(release, rendered)
            spec = release["spec"]
            if spec.get("postRenderers"):
                raise RenderError("postRenderers are not modelled by the offline render")
            api = set(base_api)
            for dep in before[key]:
                api |= crd_api_versions(results[dep].crds)
            result.api_versions = tuple(sorted(api))
            include_crds = (spec.get("install") or {}).get("crds", "Create") != "Skip"
            values_files = list((spec.get("chart") or {}).get("spec", {}).get("valuesFiles") or [])
            objects = _helm_template(locate(result.chart), result.name, result.namespace, result.values, kube_version,
                                     result.api_versions, include_crds, bool((spec.get("test") or {}).get("enable")),
                                     values_files)
            crd_kinds = {(c["spec"]["group"], c["spec"]["names"]["kind"]) for c in objects
                         if c.get("kind") == "CustomResourceDefinition" and c["spec"].get("scope") == "Cluster"}
            for obj in objects:
                meta = obj.setdefault("metadata", {})
                group = obj.get("apiVersion", "").rpartition("/")[0]
                if obj.get("kind") not in CLUSTER_SCOPED and (group, obj.get("kind")) not in crd_kinds:
                    meta.setdefault("namespace", result.namespace)
            result.objects = objects
        except RenderError as error:
            result.error = str(error)
    return results
