"""What each stage's providers need, against where and as whom the workflow runs the stage:
commands the providers execute vs the job image, the network path to the EKS API vs the runner
the job runs on, and the Kubernetes reads a plan's refresh makes vs the plan role's RBAC."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from opentofu_hcl import ENV_STACKS, ENVS, STACKS, load_config, stack, tfvars, walk_strings  # noqa: E402

REPO = STACKS.parents[1]
WORKFLOWS = REPO / ".github" / "workflows"

# Commands on PATH in the job images the OpenTofu workflow may use (Debian bookworm
# buildpack-deps plus the Rust toolchain; no AWS CLI, no kubectl). setup-opentofu adds `tofu`.
IMAGE_COMMANDS = {
    "docker.io/library/rust": {"sh", "bash", "git", "curl", "wget", "ssh", "gpg", "cargo", "rustc", "python3", "make", "gcc"},
}
ACTION_COMMANDS = {"opentofu/setup-opentofu": {"tofu"}}

K8S_PROVIDERS = {"kubernetes", "helm", "flux", "kubectl"}


def _job():
    return yaml.safe_load((WORKFLOWS / "opentofu-env.yaml").read_text())["jobs"]["tofu"]


def _commands_in_job(job) -> set[str]:
    image = (job.get("container") or {}).get("image", "")
    repo = image.split("@")[0].rsplit(":", 1)[0]
    assert repo in IMAGE_COMMANDS, f"job image {image!r} is not modelled: list its commands in IMAGE_COMMANDS"
    commands = set(IMAGE_COMMANDS[repo])
    for step in job.get("steps", []):
        action = step.get("uses", "").split("@")[0]
        commands |= ACTION_COMMANDS.get(action, set())
    return commands


def _provider_blocks(name: str) -> list[tuple[str, dict]]:
    cfg = stack(name)
    return [(ptype, body) for block in cfg.providers for ptype, body in block.items()]


def _exec_commands(body) -> set[str]:
    """`exec { command = ... }` blocks (and exec = {...} attributes) anywhere in a provider."""
    found = set()
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "exec":
                for item in value if isinstance(value, list) else [value]:
                    if isinstance(item, dict) and "command" in item:
                        found.add(item["command"])
            else:
                found |= _exec_commands(value)
    elif isinstance(body, list):
        for item in body:
            found |= _exec_commands(item)
    return found


def _resolve_local(name: str, value: str) -> str:
    match = re.fullmatch(r"\$\{local\.([\w.]+)\}", value)
    if not match:
        return value
    node = stack(name).locals
    for part in match.group(1).split("."):
        node = node[part]
    return node


@pytest.mark.parametrize("name", ENV_STACKS)
def test_every_command_a_provider_executes_is_in_the_job(name):
    available = _commands_in_job(_job())
    for ptype, body in _provider_blocks(name):
        for command in _exec_commands(body):
            command = _resolve_local(name, command)
            assert command in available, f"{name}: provider {ptype} runs `{command}`, which the OpenTofu job does not have"


def test_the_job_image_model_has_no_aws_cli():
    """The model must not quietly contain what the image lacks (the rust image has no aws)."""
    assert "aws" not in IMAGE_COMMANDS["docker.io/library/rust"]
    assert "kubectl" not in IMAGE_COMMANDS["docker.io/library/rust"]


def test_exec_detection_sees_the_aws_cli(tmp_path):
    (tmp_path / "p.tf").write_text(
        'provider "kubernetes" {\n  exec {\n    api_version = "x"\n    command = "aws"\n    args = []\n  }\n}\n'
    )
    cfg = load_config(tmp_path)
    assert _exec_commands(cfg.providers[0]["kubernetes"]) == {"aws"}


def _stacks_talking_to_kubernetes() -> set[str]:
    return {name for name in ENV_STACKS if {p for p, _ in _provider_blocks(name)} & K8S_PROVIDERS}


def test_only_platform_talks_to_the_cluster_api():
    assert _stacks_talking_to_kubernetes() == {"platform"}


def test_kubernetes_credentials_come_from_the_aws_provider_ephemerally():
    """A token the AWS provider signs is opened in plan and apply alike and never stored."""
    platform = stack("platform")
    assert "aws_eks_cluster_auth" in platform.ephemeral
    for ptype, body in _provider_blocks("platform"):
        if ptype not in K8S_PROVIDERS:
            continue
        text = " ".join(walk_strings(body))
        assert "ephemeral.aws_eks_cluster_auth.this.token" in text, ptype
    assert "aws_eks_cluster_auth" not in platform.data, "a data source token would sit in the plan file"


# ---------------------------------------------------------------- network path to the API

# Runners by the repository variable that names them, with where their traffic comes from.
# TOFU_RUNNER: a GitHub-hosted larger runner group with a static egress range (the
# `tofu-runners` entry of every cluster's endpoint_public_access_sources). RUNNER / RUNNER_DOCKER:
# the ARC scale sets on the clusters' spot `runners` nodes (or GitHub-hosted with no fixed IP).
RUNNERS = {
    "${{ vars.TOFU_RUNNER }}": {"egress": "tofu-runners", "inside_a_cluster": False},
}


@pytest.mark.parametrize("env", ENVS)
def test_the_job_that_runs_platform_reaches_the_api_endpoint(env):
    runs_on = _job()["runs-on"]
    runner = RUNNERS.get(runs_on)
    assert runner is not None, f"OpenTofu jobs run on {runs_on!r}, whose egress no EKS endpoint admits"
    sources = tfvars(env, "cluster")["endpoint_public_access_sources"]
    assert runner["egress"] in sources, f"{env}: the API endpoint does not admit {runner['egress']}"
    eks = stack("cluster").module("eks")
    assert eks["endpoint_public_access"] is True
    assert eks["endpoint_public_access_cidrs"] == "${values(var.endpoint_public_access_sources)}"


def test_applies_never_run_on_nodes_of_the_cluster_they_change():
    runs_on = _job()["runs-on"]
    assert "vars.RUNNER" not in runs_on and "ubuntu-latest" not in runs_on, runs_on
    assert RUNNERS[runs_on]["inside_a_cluster"] is False


# ---------------------------------------------------------------- Kubernetes reads of a plan

@dataclass(frozen=True)
class Read:
    group: str
    resource: str
    namespace: str | None  # None: cluster-scoped or every namespace


FLUX_GROUPS = {
    "source.toolkit.fluxcd.io": ["gitrepositories", "ocirepositories", "helmrepositories", "helmcharts", "buckets"],
    "kustomize.toolkit.fluxcd.io": ["kustomizations"],
    "helm.toolkit.fluxcd.io": ["helmreleases"],
    "notification.toolkit.fluxcd.io": ["alerts", "providers", "receivers"],
}


def _namespace(value, platform) -> str | None:
    if value is None:
        return None
    if value == "${kubernetes_namespace_v1.flux_system.metadata[0].name}":
        return platform.resource("kubernetes_namespace_v1", "flux_system")["metadata"][0]["name"]
    assert "${" not in value, f"namespace {value!r} is not modelled"
    return value


def refresh_reads(platform) -> set[Read]:
    """What refreshing each Kubernetes-side resource of the stack reads from the API."""
    reads: set[Read] = set()
    for rtype, named in platform.resources.items():
        for name, body in named.items():
            meta = (body.get("metadata") or [{}])[0] if isinstance(body.get("metadata"), list) else {}
            ns = _namespace(meta.get("namespace"), platform)
            if rtype == "kubernetes_namespace_v1":
                reads.add(Read("", "namespaces", None))
            elif rtype == "kubernetes_config_map_v1":
                reads.add(Read("", "configmaps", ns))
            elif rtype == "kubernetes_secret_v1":
                reads.add(Read("", "secrets", ns))
            elif rtype in ("kubernetes_cluster_role_v1", "kubernetes_cluster_role_binding_v1"):
                reads.add(Read("rbac.authorization.k8s.io", "clusterroles" if "binding" not in rtype else "clusterrolebindings", None))
            elif rtype in ("kubernetes_role_v1", "kubernetes_role_binding_v1"):
                reads.add(Read("rbac.authorization.k8s.io", "roles" if "binding" not in rtype else "rolebindings", ns))
            elif rtype == "helm_release":
                # Helm's release records: Secrets sh.helm.release.v1.<name>.v<n> of the namespace.
                reads.add(Read("", "secrets", _namespace(body["namespace"], platform)))
            elif rtype == "flux_bootstrap_git":
                # The Flux provider reads its CRDs and every Flux object, the sync objects included.
                reads.add(Read("apiextensions.k8s.io", "customresourcedefinitions", None))
                reads.add(Read("", "namespaces", None))
                reads.add(Read("apps", "deployments", "flux-system"))
                for group, resources in FLUX_GROUPS.items():
                    for resource in resources:
                        reads.add(Read(group, resource, "flux-system"))
            elif rtype == "kubernetes_manifest":
                manifest = body["manifest"]
                group = manifest["apiVersion"].rsplit("/", 1)[0] if "/" in manifest["apiVersion"] else ""
                reads.add(Read("apiextensions.k8s.io", "customresourcedefinitions", None))
                reads.add(Read(group, manifest["kind"].lower() + "s", _namespace(manifest["metadata"].get("namespace"), platform)))
            elif rtype.startswith(("kubernetes_", "helm_", "flux_", "kubectl_")):
                raise AssertionError(f"{rtype}.{name}: what its refresh reads is not modelled")
    return reads


# AmazonEKSViewPolicy: read of the built-in workload and configuration kinds, no Secrets, no
# CRDs, no custom resources (the access policy's RBAC, as documented by AWS).
VIEW_POLICY_GROUPS = {"", "apps", "batch", "autoscaling", "policy", "networking.k8s.io", "storage.k8s.io", "discovery.k8s.io"}
VIEW_POLICY_EXCLUDED = {("", "secrets")}
READ_VERBS = {"get", "list", "watch"}


@dataclass
class Rule:
    groups: list[str]
    resources: list[str]
    verbs: list[str]
    namespace: str | None

    def covers(self, read: Read) -> bool:
        if self.namespace is not None and read.namespace != self.namespace:
            return False
        return (
            (read.group in self.groups or "*" in self.groups)
            and (read.resource in self.resources or "*" in self.resources)
            and {"get", "list"} <= set(self.verbs) | ({"get", "list"} if "*" in self.verbs else set())
        )


def _verbs(value, platform) -> list[str]:
    if isinstance(value, str):
        match = re.fullmatch(r"\$\{local\.(\w+)\}", value)
        assert match, value
        return platform.locals[match.group(1)]
    return value


def plan_group_rules(platform, group: str) -> list[Rule]:
    """RBAC rules bound to a Kubernetes group by the stack's (Cluster)RoleBindings."""
    rules = []
    for kind, binding_type, role_type in (
        ("ClusterRole", "kubernetes_cluster_role_binding_v1", "kubernetes_cluster_role_v1"),
        ("Role", "kubernetes_role_binding_v1", "kubernetes_role_v1"),
    ):
        for binding in platform.resources.get(binding_type, {}).values():
            subjects = binding["subject"]
            if not any(s["kind"] == "Group" and _group_name(s["name"], platform) == group for s in subjects):
                continue
            ref = binding["role_ref"][0]
            assert ref["kind"] == kind
            match = re.fullmatch(rf"\$\{{{role_type}\.(\w+)\.metadata\[0\]\.name\}}", ref["name"])
            assert match, ref["name"]
            role = platform.resource(role_type, match.group(1))
            ns = _namespace(role["metadata"][0].get("namespace"), platform) if kind == "Role" else None
            for rule in role["rule"]:
                rules.append(Rule(rule["api_groups"], rule["resources"], _verbs(rule["verbs"], platform), ns))
    return rules


def _group_name(value: str, cfg) -> str:
    return value.replace("${var.project}", cfg.variables["project"]["default"]).replace(
        "${local.plan_readers_group}", cfg.locals.get("plan_readers_group", "").replace("${var.project}", cfg.variables["project"]["default"])
    )


def plan_principal():
    """The plan role's access entry: its Kubernetes groups and AWS access policies."""
    cluster = stack("cluster")
    entry = cluster.locals["ci_access_entries"]["ci-plan"]
    groups = [_group_name(g, cluster) for g in entry.get("kubernetes_groups", [])]
    policies = [a["policy_arn"].rsplit("/", 1)[-1] for a in entry.get("policy_associations", {}).values()]
    return groups, policies


def allowed(read: Read, groups, policies, platform) -> bool:
    if "AmazonEKSViewPolicy" in policies and read.group in VIEW_POLICY_GROUPS and (read.group, read.resource) not in VIEW_POLICY_EXCLUDED:
        return True
    return any(rule.covers(read) for g in groups for rule in plan_group_rules(platform, g))


def test_the_plan_role_may_read_everything_a_platform_plan_refreshes():
    platform = stack("platform")
    groups, policies = plan_principal()
    missing = sorted(f"{r.group or 'core'}/{r.resource} in {r.namespace or 'the cluster'}" for r in refresh_reads(platform) if not allowed(r, groups, policies, platform))
    assert missing == [], f"a pull-request plan of platform fails on refresh: the plan role cannot read {missing}"


def test_the_plan_role_may_read_flux_and_crds_for_diagnostics():
    platform = stack("platform")
    groups, policies = plan_principal()
    wanted = [Read("apiextensions.k8s.io", "customresourcedefinitions", None)]
    wanted += [Read(g, r, "flux-system") for g, rs in FLUX_GROUPS.items() for r in rs]
    wanted.append(Read("fluxcd.controlplane.io", "fluxinstances", "flux-system"))
    assert [r for r in wanted if not allowed(r, groups, policies, platform)] == []


def test_the_plan_role_kubernetes_access_is_read_only():
    platform = stack("platform")
    groups, policies = plan_principal()
    assert set(policies) <= {"AmazonEKSViewPolicy"}, policies
    for group in groups:
        rules = plan_group_rules(platform, group)
        assert rules, f"{group} is bound to nothing: the access entry's group and the binding disagree"
        for rule in rules:
            assert set(rule.verbs) <= READ_VERBS, rule
        secrets = [r for r in rules if "" in r.groups and ("secrets" in r.resources or "*" in r.resources)]
        assert all(r.namespace == "flux-system" for r in secrets), "Secrets readable outside flux-system"


def test_the_access_model_refuses_what_view_does_not_cover():
    """View alone (the former configuration) cannot refresh Helm releases or read CRDs."""
    platform = stack("platform")
    assert not allowed(Read("", "secrets", "flux-system"), [], ["AmazonEKSViewPolicy"], platform)
    assert not allowed(Read("apiextensions.k8s.io", "customresourcedefinitions", None), [], ["AmazonEKSViewPolicy"], platform)
    assert allowed(Read("", "configmaps", "flux-system"), [], ["AmazonEKSViewPolicy"], platform)
