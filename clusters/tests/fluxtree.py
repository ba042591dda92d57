"""Renders what Flux would apply for one environment, offline.

Mirrors the parts of Flux that decide what reaches the cluster:
- the root Kustomization `flux-system` builds `clusters/<env>` (no kustomization.yaml there,
  so Flux generates one listing the directory's manifests and sub-directories);
- each Flux Kustomization builds its `path` with kustomize (load restrictor off, as
  kustomize-controller does) and then applies `postBuild.substituteFrom` + `substitute`
  (inline values win) with strict variable checking;
- HelmReleases of our own chart are rendered with `helm template` of the local chart and the
  HelmRelease's final values. Third-party charts cannot be pulled offline; their HelmReleases
  and sources are checked as objects, their templates only in the cloud (flux diff).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
TESTS = Path(__file__).resolve().parent
ENVIRONMENTS = ("dev", "staging", "prod")
OWN_CHART = REPO / "apps" / "base" / "task-api" / "chart"
OWN_HELMRELEASE = ("task-api", "task-api")  # (namespace, name)

# The keys of the cluster-vars ConfigMap that OpenTofu writes (the shared contract).
CLUSTER_VARS_KEYS = frozenset(
    {
        "cluster_name",
        "environment",
        "aws_region",
        "aws_account_id",
        "domain",
        "ecr_registry",
        "vpc_id",
        "vpc_cidr",
        "task_api_role_arn",
        "external_secrets_role_arn",
        "aws_lb_controller_role_arn",
        "db_secret_name",
        "acm_certificate_arn",
        "oidc_issuer_url",
        "oidc_audience",
        "rds_ca_bundle_base64",
    }
)

FLUX_KUSTOMIZATION = "kustomize.toolkit.fluxcd.io/v1"
# Filled by the environment comparison, printed in the terminal summary (conftest.py).
ENV_DIFF_REPORT: list[str] = []
VAR_NAME = r"[_a-zA-Z][_a-zA-Z0-9]*"
_SUBST = re.compile(
    r"\$(?:(?P<escape>\$)|\{(?P<braced>" + VAR_NAME + r")(?:(?P<op>:?[-=])(?P<default>[^}]*))?\}"
    r"|(?P<bare>" + VAR_NAME + r")|(?P<bad>\{[^}]*\}))"
)


class RenderError(Exception):
    """A manifest that Flux would refuse to build or apply."""


def envsubst(text: str, variables: dict[str, str]) -> tuple[str, list[str]]:
    """Flux post-build substitution (drone/envsubst as kustomize-controller uses it).

    Supports ``$$`` (literal ``$``), ``${var}``, ``$var``, ``${var:-default}``,
    ``${var:=default}``, ``${var-default}`` and ``${var=default}``. Returns the result and the
    names that had neither a value nor a default (strict mode fails the build on those).
    """
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group("escape"):
            return "$"
        if match.group("bad"):
            missing.append(match.group(0))
            return match.group(0)
        name = match.group("braced") or match.group("bare")
        op, default = match.group("op"), match.group("default")
        value = variables.get(name)
        if op is None:
            if value is None:
                missing.append(name)
                return ""
            return value
        if op.startswith(":"):
            return value if value else default
        return value if value is not None else default

    return _SUBST.sub(replace, text), missing


class _KubernetesLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader (libyaml's where PyYAML has it: chart renders are large) without PyYAML's
    YAML 1.1 "=" value tag, which Kubernetes' YAML parser does not have (kustomize prints
    `matchType: =` unquoted)."""


_KubernetesLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_documents(text: str) -> list[dict]:
    return [doc for doc in yaml.load_all(text, Loader=_KubernetesLoader) if doc is not None]


def object_id(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or "_cluster"
    return f"{obj.get('kind')}/{namespace}/{meta.get('name')}"


def run(command: list[str], cwd: Path | None = None, stdin: str | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RenderError(f"{' '.join(command)} failed:\n{result.stderr.strip()}")
    return result.stdout


def kustomize_build(path: Path) -> list[dict]:
    return load_documents(run(["kubectl", "kustomize", "--load-restrictor=LoadRestrictionsNone", str(path)]))


# The kind environment of the e2e workflow and local development (clusters/ci): its root sync is
# created by clusters/ci/up.sh and its cluster-vars are part of the tree.
KIND_ENVIRONMENT = "ci"


def build_with_components(path: Path, components: list[str]) -> list[dict]:
    """kustomize build of a Flux Kustomization's path with its spec.components (paths relative
    to spec.path), which kustomize-controller adds to the path's kustomization."""
    if not components:
        return kustomize_build(path)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "build"
        work.mkdir()
        for component in components:
            if not (path / component / "kustomization.yaml").is_file():
                raise RenderError(f"component {component} (relative to {path.relative_to(REPO)}) does not exist")
        (work / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(path, work)],
            "components": [os.path.relpath(path / c, work) for c in components],
        }))
        return kustomize_build(work)


def cluster_vars(environment: str) -> dict[str, str]:
    """The fake-but-realistic cluster-vars ConfigMap of an environment (tests/fixtures; for the
    kind environment, the ConfigMap its tree applies)."""
    source = (REPO / "clusters" / "ci" / "cluster-vars.yaml" if environment == KIND_ENVIRONMENT
              else TESTS / "fixtures" / f"cluster-vars-{environment}.yaml")
    docs = load_documents(source.read_text())
    maps = [d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "cluster-vars"]
    if len(maps) != 1 or maps[0]["metadata"].get("namespace") != "flux-system":
        raise RenderError(f"fixture for {environment} must hold one ConfigMap flux-system/cluster-vars")
    return {k: str(v) for k, v in maps[0]["data"].items()}


# Minimal stand-ins for the controller Deployments that flux_bootstrap_git generates into
# gotk-components.yaml, so that the bootstrap kustomization (and its patches) can be built.
_FLUX_CONTROLLERS = ("source-controller", "kustomize-controller", "helm-controller", "notification-controller")


def _stub_gotk_components() -> str:
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}]
    for name in _FLUX_CONTROLLERS:
        docs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "namespace": "flux-system", "labels": {"app": name}},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {
                            "containers": [
                                {"name": "manager", "image": f"ghcr.io/fluxcd/{name}:v0.0.0", "args": ["--log-level=info"]}
                            ]
                        },
                    },
                },
            }
        )
    return yaml.safe_dump_all(docs, sort_keys=False)


@dataclass
class Rendered:
    environment: str
    # object id -> (origin, object); origin = Flux Kustomization name or "helm:<release>".
    objects: dict[str, tuple[str, dict]] = field(default_factory=dict)
    kustomizations: dict[str, dict] = field(default_factory=dict)
    bootstrap: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, origin: str, obj: dict) -> None:
        key = object_id(obj)
        if key in self.objects and key != "Namespace/_cluster/flux-system":
            self.problems.append(f"{key} is applied by both {self.objects[key][0]} and {origin}")
        self.objects[key] = (origin, obj)

    def of_kind(self, kind: str) -> list[dict]:
        return [obj for _, obj in self.objects.values() if obj.get("kind") == kind]


def render_root(environment: str) -> list[dict]:
    """What the root Kustomization flux-system applies from clusters/<env>."""
    cluster_dir = REPO / "clusters" / environment
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / environment
        shutil.copytree(cluster_dir, work)
        if (work / "kustomization.yaml").exists():
            return kustomize_build(work)  # Flux builds a kustomization.yaml that is there as is
        components = work / "flux-system" / "gotk-components.yaml"
        if components.exists():
            raise RenderError("gotk-components.yaml is generated at bootstrap; do not commit a hand-made one")
        bootstrap = yaml.safe_load((work / "flux-system" / "kustomization.yaml").read_text()) or {}
        if "gotk-components.yaml" in (bootstrap.get("resources") or []):
            components.write_text(_stub_gotk_components())
        entries = sorted(
            p.name
            for p in work.iterdir()
            if (p.is_file() and p.suffix in (".yaml", ".yml")) or (p.is_dir() and (p / "kustomization.yaml").exists())
        )
        (work / "kustomization.yaml").write_text(
            yaml.safe_dump({"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": entries})
        )
        return kustomize_build(work)


def substitute_objects(objects: list[dict], variables: dict[str, str], origin: str) -> tuple[list[dict], list[str]]:
    result, problems = [], []
    for obj in objects:
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        if annotations.get("kustomize.toolkit.fluxcd.io/substitute") == "disabled":
            result.append(obj)
            continue
        text, missing = envsubst(yaml.safe_dump(obj, sort_keys=False), variables)
        for name in missing:
            problems.append(f"{origin}: {object_id(obj)} uses ${{{name}}} which no substitution defines")
        result.append(yaml.load(text, Loader=_KubernetesLoader))
    return result, problems


def substitution_variables(kustomization: dict, configmaps: dict[str, dict[str, str]]) -> tuple[dict[str, str], list[str]]:
    post_build = kustomization["spec"].get("postBuild") or {}
    variables: dict[str, str] = {}
    problems = []
    for ref in post_build.get("substituteFrom") or []:
        if ref.get("kind") != "ConfigMap" or ref.get("name") not in configmaps:
            if not ref.get("optional"):
                problems.append(f"Kustomization {kustomization['metadata']['name']}: substituteFrom {ref} not found")
            continue
        variables.update(configmaps[ref["name"]])
    for name, value in (post_build.get("substitute") or {}).items():
        if not re.fullmatch(VAR_NAME, name):
            problems.append(f"Kustomization {kustomization['metadata']['name']}: invalid variable name {name}")
        if not isinstance(value, str):
            problems.append(f"Kustomization {kustomization['metadata']['name']}: substitute.{name} must be a string")
        variables[name] = str(value)
    return variables, problems


def kubernetes_version(environment: str) -> str:
    """The cluster's Kubernetes minor as x.y.0 (for --kube-version): what OpenTofu creates
    (opentofu/environments/<env>/cluster.tfvars), or for the kind environment its node image."""
    if environment == KIND_ENVIRONMENT:
        images = set(re.findall(r"image: kindest/node:v(\d+\.\d+)\.\d+", (REPO / "clusters" / "ci" / "kind.yaml").read_text()))
        if len(images) != 1:
            raise RenderError(f"clusters/ci/kind.yaml must run one Kubernetes minor, found {images}")
        return images.pop() + ".0"
    tfvars = (REPO / "opentofu" / "environments" / environment / "cluster.tfvars").read_text()
    match = re.search(r'^kubernetes_version\s*=\s*"(\d+\.\d+)"', tfvars, re.M)
    if not match:
        raise RenderError(f"no kubernetes_version in opentofu/environments/{environment}/cluster.tfvars")
    return match.group(1) + ".0"


def helm_template(release: dict, values: dict, kube_version: str) -> list[dict]:
    meta = release["metadata"]
    name = release["spec"].get("releaseName") or meta["name"]
    namespace = release["spec"].get("targetNamespace") or meta["namespace"]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(values, handle)
        values_file = handle.name
    try:
        out = run(
            [
                "helm",
                "template",
                name,
                str(OWN_CHART),
                "--namespace",
                namespace,
                "--kube-version",
                kube_version,
                "--values",
                values_file,
            ]
        )
    finally:
        os.unlink(values_file)
    objects = load_documents(out)
    for obj in objects:
        obj.setdefault("metadata", {}).setdefault("namespace", namespace)
    return objects


def flux_instance_sync(root: list[dict]) -> list[dict]:
    """The GitRepository and Kustomization `flux-system` that the Flux Operator generates from
    a FluxInstance's .spec.sync (nothing committed holds them)."""
    instances = [o for o in root if o.get("kind") == "FluxInstance"]
    if not instances:
        return []
    if len(instances) != 1:
        raise RenderError("more than one FluxInstance in the root")
    sync = instances[0]["spec"].get("sync") or {}
    ref = sync.get("ref", "")
    git_ref = {"branch": ref[len("refs/heads/"):]} if ref.startswith("refs/heads/") else {"name": ref}
    repository = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": sync.get("kind", "GitRepository"),
        "metadata": {"name": sync.get("name", "flux-system"), "namespace": "flux-system"},
        "spec": {"interval": sync.get("interval", "1m"), "url": sync.get("url"), "ref": git_ref,
                 **({"secretRef": {"name": sync["pullSecret"]}} if sync.get("pullSecret") else {})},
    }
    kustomization = {
        "apiVersion": FLUX_KUSTOMIZATION,
        "kind": "Kustomization",
        "metadata": {"name": sync.get("name", "flux-system"), "namespace": "flux-system"},
        "spec": {"interval": sync.get("interval", "1m"), "path": "./" + str(sync.get("path", "")).lstrip("./"),
                 "prune": True, "sourceRef": {"kind": repository["kind"], "name": repository["metadata"]["name"]}},
    }
    return [repository, kustomization]


def _kind_sync() -> list[dict]:
    """The GitRepository and Kustomization flux-system that clusters/ci/up.sh creates."""
    return [
        {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
         "metadata": {"name": "flux-system", "namespace": "flux-system"},
         "spec": {"interval": "1m", "url": "https://github.com/example-org/task-platform", "ref": {"branch": "main"},
                  "ignore": "clusters/**/flux-system/"}},
        {"apiVersion": FLUX_KUSTOMIZATION, "kind": "Kustomization",
         "metadata": {"name": "flux-system", "namespace": "flux-system"},
         "spec": {"interval": "10m", "path": "./clusters/ci", "prune": True,
                  "sourceRef": {"kind": "GitRepository", "name": "flux-system"}}},
    ]


def render_environment(environment: str, variables_override: dict[str, str] | None = None) -> Rendered:
    """Everything Flux applies in one environment. variables_override replaces cluster-vars
    (used to compare environments with identical per-cluster facts)."""
    rendered = Rendered(environment)
    configmaps = {"cluster-vars": variables_override or cluster_vars(environment)}
    root = render_root(environment)
    root += flux_instance_sync(root)
    if environment == KIND_ENVIRONMENT:
        root += _kind_sync()
    rendered.bootstrap = root
    for obj in root:
        if obj.get("kind") == "Deployment" and obj["metadata"]["namespace"] == "flux-system":
            continue  # stand-ins for gotk-components.yaml, checked separately
        rendered.add("flux-system", obj)
        if obj.get("apiVersion") == FLUX_KUSTOMIZATION and obj.get("kind") == "Kustomization":
            rendered.kustomizations[obj["metadata"]["name"]] = obj

    for name, kustomization in rendered.kustomizations.items():
        if name == "flux-system":
            continue
        spec = kustomization["spec"]
        path = (REPO / spec["path"]).resolve()
        if not path.is_dir() or REPO not in path.parents:
            rendered.problems.append(f"Kustomization {name}: path {spec['path']} does not exist in the repository")
            continue
        variables, problems = substitution_variables(kustomization, configmaps)
        rendered.problems.extend(problems)
        objects, problems = substitute_objects(build_with_components(path, spec.get("components") or []), variables, name)
        rendered.problems.extend(problems)
        for obj in objects:
            if spec.get("targetNamespace") and obj.get("metadata", {}).get("namespace") is None:
                obj["metadata"]["namespace"] = spec["targetNamespace"]
            rendered.add(name, obj)

    for release in rendered.of_kind("HelmRelease"):
        meta = release["metadata"]
        if (meta.get("namespace"), meta["name"]) != OWN_HELMRELEASE:
            continue
        for obj in helm_template(release, release["spec"].get("values") or {}, kubernetes_version(environment)):
            rendered.add(f"helm:{meta['name']}", obj)
    return rendered
