"""Helpers for the chart checks: find the tools, collect every value set the chart is
installed with (the chart's own ci/*.yaml and each environment's HelmRelease values rendered
from apps/<env>/ with Flux's variable substitution applied), and render them once per run."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

CHART = Path(__file__).resolve().parents[1]
TESTS = CHART / "tests"
REPO = CHART.parents[3]
APPS = REPO / "apps"

RELEASE_NAME = "task-api"
NAMESPACE = "task-api"

# Oldest Kubernetes minor the chart supports (Chart.yaml kubeVersion: the preStop sleep action
# needs 1.30) and a current EKS minor: every object must be valid on both.
KUBERNETES_VERSIONS = ("1.30.0", "1.34.0")

# What OpenTofu writes into flux-system/cluster-vars, per environment: the Flux tree's checks
# keep one fixture per environment (fake identifiers, real shapes). Flux substitutes these into
# the HelmRelease before Helm sees the values; a variable missing from the fixture fails.
CLUSTER_VARS_FIXTURES = REPO / "clusters" / "tests" / "fixtures"


def cluster_vars(environment: str) -> dict[str, str]:
    path = CLUSTER_VARS_FIXTURES / f"cluster-vars-{environment}.yaml"
    assert path.exists(), f"no cluster-vars fixture for {environment}: {path.relative_to(REPO)}"
    return {k: str(v) for k, v in yaml.safe_load(path.read_text())["data"].items()}


# The release files carry a placeholder tag until the first promotion; render with a real one.
SAMPLE_IMAGE_TAG = "0123456789abcdef0123456789abcdef01234567"

TOOL_DIRS = [
    Path(os.environ.get("TOOLS_DIR", Path.home() / ".cache/task-platform/tools")) / "bin",
    Path(os.environ.get("TOOLS_DIR", Path.home() / ".cache/task-platform/tools")) / "venv" / "bin",
]


def tool(name: str) -> str:
    """Path of a command installed by .ci/tools.sh; a missing tool is a failure, not a skip."""
    found = shutil.which(name)
    if found:
        return found
    for directory in TOOL_DIRS:
        candidate = directory / name
        if candidate.exists():
            return str(candidate)
    pytest.fail(f"`{name}` is not installed: run `source .ci/tools.sh` first")


def run(cmd: list[str], *, check: bool = True, input_text: str | None = None, timeout: int = 120):
    result = subprocess.run(cmd, capture_output=True, text=True, input=input_text, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout}\n{result.stderr}"
        )
    return result


@dataclass(frozen=True)
class ValueSet:
    """One way the chart is installed: a name and a values file."""

    name: str
    path: Path
    prod_like: bool

    def __str__(self) -> str:
        return self.name


_FLUX_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[=-]([^}]*))?\}")


def flux_substitute(text: str, variables: dict[str, str]) -> str:
    """Flux's postBuild.substitute: ${var}, ${var:=default}, ${var:-default}."""

    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in variables:
            return variables[name]
        if default is not None:
            return default
        raise AssertionError(f"${{{name}}} is not a cluster-vars key and has no default")

    return _FLUX_VAR.sub(replace, text)


def environment_dirs() -> list[Path]:
    if not APPS.is_dir():
        return []
    return sorted(
        d for d in APPS.iterdir() if d.is_dir() and d.name != "base" and (d / "kustomization.yaml").exists()
    )


def helmrelease_values(env_dir: Path) -> dict:
    """The task-api HelmRelease values an environment's overlay produces, after substitution."""
    built = run([tool("kubectl"), "kustomize", str(env_dir)]).stdout
    releases = [
        d
        for d in yaml.safe_load_all(built)
        if d and d.get("kind") == "HelmRelease" and d["metadata"]["name"] == RELEASE_NAME
    ]
    assert len(releases) == 1, f"{env_dir.name}: expected one HelmRelease {RELEASE_NAME}, found {len(releases)}"
    release_text = flux_substitute(yaml.safe_dump(releases[0]), cluster_vars(env_dir.name))
    spec = yaml.safe_load(release_text)["spec"]
    assert not spec.get("valuesFrom"), (
        f"{env_dir.name}: valuesFrom is not rendered by these checks; keep values inline"
    )
    values = spec.get("values") or {}
    tag = values.get("image", {}).get("tag", "")
    if re.fullmatch(r"0{40}", str(tag)):
        values["image"]["tag"] = SAMPLE_IMAGE_TAG
    return values


PRODUCTION_LIKE_ENVIRONMENTS = ("staging", "prod")


@functools.lru_cache(maxsize=None)
def value_sets(workdir: str) -> tuple[ValueSet, ...]:
    sets = [
        ValueSet(f"ci/{p.name}", p, prod_like=p.stem.startswith("prod"))
        for p in sorted((CHART / "ci").glob("*.yaml"))
    ]
    for env_dir in environment_dirs():
        path = Path(workdir) / f"env-{env_dir.name}.yaml"
        path.write_text(yaml.safe_dump(helmrelease_values(env_dir), sort_keys=False))
        sets.append(ValueSet(f"apps/{env_dir.name}", path, prod_like=env_dir.name in PRODUCTION_LIKE_ENVIRONMENTS))
    return tuple(sets)


def value_set_names() -> list[str]:
    names = [f"ci/{p.name}" for p in sorted((CHART / "ci").glob("*.yaml"))]
    names += [f"apps/{d.name}" for d in environment_dirs()]
    return names


def production_like_value_set_names() -> list[str]:
    names = [f"ci/{p.name}" for p in sorted((CHART / "ci").glob("prod*.yaml"))]
    names += [f"apps/{d.name}" for d in environment_dirs() if d.name in PRODUCTION_LIKE_ENVIRONMENTS]
    return names


@pytest.fixture(scope="session")
def value_set_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("values"))


@pytest.fixture(scope="session")
def value_set_by_name(value_set_dir):
    return {v.name: v for v in value_sets(value_set_dir)}


_SCHEMA_ERROR_PATH = re.compile(r"at '/([^']*)'")


def schema_error_paths(output: str) -> str:
    """Helm 4 (the Helm that Flux's helm-controller embeds) names a failing value by JSON
    pointer (`at '/image/tag'`); add the dotted form (`image.tag`) so that checks can name a
    value the way values.yaml is read."""
    dotted = [path.replace("/", ".") for path in _SCHEMA_ERROR_PATH.findall(output)]
    return output + "\n" + "\n".join(dotted)


def helm_template(*args: str, check: bool = True):
    return run(
        [tool("helm"), "template", RELEASE_NAME, str(CHART), "--namespace", NAMESPACE, *args], check=check
    )


@functools.lru_cache(maxsize=None)
def _render(path: str) -> tuple:
    out = helm_template("-f", path).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def render(value_set: ValueSet) -> list[dict]:
    """Rendered objects (fresh copies, so tests may not disturb each other)."""
    return json.loads(json.dumps(list(_render(str(value_set.path)))))


@pytest.fixture(params=value_set_names())
def value_set(request, value_set_by_name) -> ValueSet:
    return value_set_by_name[request.param]


@pytest.fixture(params=production_like_value_set_names())
def production_value_set(request, value_set_by_name) -> ValueSet:
    chosen = value_set_by_name[request.param]
    assert chosen.prod_like
    return chosen


@pytest.fixture
def objects(value_set) -> list[dict]:
    return render(value_set)


def only(objects: list[dict], kind: str) -> dict:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected exactly one {kind}, found {len(found)}"
    return found[0]


def values_of(value_set: ValueSet) -> dict:
    """The chart's defaults merged with a value set, as Helm merges them."""

    def merge(base, override):
        if isinstance(base, dict) and isinstance(override, dict):
            out = dict(base)
            for key, value in override.items():
                if value is None:
                    out.pop(key, None)
                else:
                    out[key] = merge(base.get(key), value)
            return out
        return override

    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    return merge(defaults, yaml.safe_load(value_set.path.read_text()) or {})


@functools.lru_cache(maxsize=None)
def crd_validator_dir() -> Path:
    """Installs (once, cached) the npm packages that carry the CRD schemas."""
    npm_dir = Path(tool("npm")).parent if shutil.which("npm") else None
    env = dict(os.environ)
    if npm_dir:
        env["PATH"] = f"{npm_dir}:{env['PATH']}"
    result = subprocess.run(
        ["bash", str(TESTS / "crd-validator" / "install-crd-validator.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, f"CRD validator installation failed:\n{result.stderr}"
    return Path(result.stdout.strip().splitlines()[-1])


def validate_custom_resources(objects: list[dict]) -> list[dict]:
    """Per object: {apiVersion, kind, name, errors}; unknown kinds come back as errors."""
    directory = crd_validator_dir()
    result = run([tool("node"), str(directory / "validate.mjs")], input_text=json.dumps(objects))
    return json.loads(result.stdout)


@functools.lru_cache(maxsize=None)
def _validate_all_custom_resources(workdir: str) -> dict[str, list[dict]]:
    """One validator run for the custom resources of every value set (node starts once)."""
    batches = {vs.name: [o for o in render(vs) if is_custom_resource(o)] for vs in value_sets(workdir)}
    flat = [o for batch in batches.values() for o in batch]
    results = validate_custom_resources(flat)
    assert len(results) == len(flat)
    out, start = {}, 0
    for name, batch in batches.items():
        out[name] = results[start : start + len(batch)]
        start += len(batch)
    return out


def custom_resource_results(value_set: ValueSet, workdir: str) -> list[dict]:
    return _validate_all_custom_resources(workdir)[value_set.name]


CUSTOM_RESOURCE_GROUPS = {"monitoring.coreos.com", "external-secrets.io", "gateway.networking.k8s.io"}


def is_custom_resource(obj: dict) -> bool:
    return obj["apiVersion"].split("/")[0] in CUSTOM_RESOURCE_GROUPS


def _crd_fields_module():
    """The Flux tree's checks read CRD field lists from the same packages' type declarations
    (clusters/tests/crd_fields.py); one implementation serves both, loaded under its own name."""
    import importlib.util

    path = REPO / "clusters" / "tests" / "crd_fields.py"
    assert path.exists(), f"{path.relative_to(REPO)} is missing"
    spec = importlib.util.spec_from_file_location("task_api_chart_crd_fields", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module while being defined
    spec.loader.exec_module(module)
    return module


CRD_DECLARATION_PACKAGES = {
    "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
    "external-secrets.io": "@kubernetes-models/external-secrets",
    "gateway.networking.k8s.io": "@kubernetes-models/gateway-api",
}


_EXTENDS = re.compile(r"export interface [A-Za-z0-9_]+\s+extends\s+([^{]+)\{")


@functools.lru_cache(maxsize=None)
def _crd_declarations():
    module = _crd_fields_module()

    class InheritingDeclarations(module.Declarations):
        """Adds the fields of `interface X extends Y` (Gateway API's route and backend types
        inherit most of theirs)."""

        @functools.lru_cache(maxsize=None)
        def interface(self, path):
            own = super().interface(path)
            source = module._COMMENT.sub("", path.read_text(encoding="utf-8"))
            extends = _EXTENDS.search(source)
            if not extends:
                return own
            imports = dict(module._IMPORT.findall(source))
            fields = dict(own.fields) if isinstance(own, module.StructType) else {}
            for parent_name in (n.strip() for n in extends.group(1).split(",")):
                parent_path = self.module_file(imports[parent_name], path) if parent_name in imports else None
                if parent_path is None:
                    # Outside the CRD packages (the base TypeMeta: apiVersion and kind, which
                    # every resource declares itself); an undeclared field would still show.
                    continue
                parent = self.interface(parent_path)
                if not isinstance(parent, module.StructType):
                    return module.ANY  # a free-form parent makes the whole type free-form
                fields = {**parent.fields, **fields}
            return module.StructType(fields)

    return module, InheritingDeclarations(crd_validator_dir() / "node_modules")


def unknown_custom_resource_fields(obj: dict) -> list[str]:
    """Fields of a custom resource that its CRD does not declare (the compiled validators
    accept extra fields; the API server would silently drop them)."""
    module, declarations = _crd_declarations()
    group, _, version = obj["apiVersion"].rpartition("/")
    package = CRD_DECLARATION_PACKAGES.get(group)
    assert package, f"no declarations known for {obj['apiVersion']}"
    path = crd_validator_dir() / "node_modules" / package / group / version / f"{obj['kind']}.d.ts"
    assert path.is_file(), f"no declaration for {obj['apiVersion']} {obj['kind']}"
    return module.unknown_fields(obj, declarations.interface(path))
