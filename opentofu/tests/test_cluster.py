"""Cluster stage: API exposure, encryption, logging, node pools, access."""

from __future__ import annotations

import ipaddress
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from opentofu_hcl import ENVS, stack, tfvars  # noqa: E402

POOLS = ("system", "apps", "runners")
RUNNERS_MAX_CAP = 20


@pytest.fixture(scope="module")
def cluster():
    return stack("cluster")


@pytest.fixture(scope="module")
def eks(cluster):
    return cluster.module("eks")


def test_api_endpoint_private_and_public_restricted_to_named_sources(eks, cluster):
    assert eks["endpoint_private_access"] is True
    assert eks["endpoint_public_access"] is True
    assert eks["endpoint_public_access_cidrs"] == "${values(var.endpoint_public_access_sources)}"
    assert "default" not in cluster.variables["endpoint_public_access_sources"]


@pytest.mark.parametrize("env", ENVS)
def test_public_endpoint_never_open_to_the_world(env):
    sources = tfvars(env, "cluster")["endpoint_public_access_sources"]
    assert "tofu-runners" in sources, f"{env}: the OpenTofu runners could not reach the API"
    for name, cidr in sources.items():
        net = ipaddress.ip_network(cidr)
        assert net.prefixlen >= 16, f"{env}: {name} {cidr} is too wide for the API endpoint"


def test_secrets_envelope_encryption_with_rotated_cmk(eks):
    assert eks["create_kms_key"] is True
    assert eks["enable_kms_key_rotation"] is True
    assert eks["encryption_config"]["resources"] == ["secrets"]


def test_control_plane_logging(eks):
    assert {"api", "audit", "authenticator"} <= set(eks["enabled_log_types"])
    assert eks["cloudwatch_log_group_kms_key_id"] == "${local.network.logs_kms_key_arn}"


def test_access_entries_only_api_mode(eks, cluster):
    assert eks["authentication_mode"] == "API"
    assert eks["enable_cluster_creator_admin_permissions"] is False
    entries = cluster.locals["ci_access_entries"]
    assert "AmazonEKSClusterAdminPolicy" in entries["ci-apply"]["policy_associations"]["admin"]["policy_arn"]
    # The plan role reads more than AmazonEKSViewPolicy covers (CRDs, Flux's API groups, the
    # Helm release records): its group is bound read-only by the platform stage, see
    # test_stage_requirements.py for what that binding must cover.
    assert entries["ci-plan"]["kubernetes_groups"] == ["${local.plan_readers_group}"]
    for association in entries["ci-plan"].get("policy_associations", {}).values():
        assert "Admin" not in association["policy_arn"] and "Edit" not in association["policy_arn"]


@pytest.mark.parametrize("env", ENVS)
def test_named_operators_can_reach_the_cluster_after_bootstrap(env, cluster):
    """authentication_mode API: only access entries authenticate. Without operators' entries
    nobody but the CI roles could run kubectl or flux."""
    admins = tfvars(env, "cluster")["cluster_admin_role_arns"]
    assert admins, f"{env}: no operator can reach the cluster"
    for arn in admins:
        assert re.fullmatch(r"arn:aws:iam::\d{12}:role/[\w+=,.@-]+", arn), f"{env}: {arn} (no path in access entry ARNs)"
    assert "default" not in cluster.variables["cluster_admin_role_arns"]
    assert "admin_access_entries" in cluster.locals
    assert "local.admin_access_entries" in cluster.module("eks")["access_entries"]


ADDONS = {"vpc-cni", "eks-pod-identity-agent", "kube-proxy", "coredns", "aws-ebs-csi-driver"}
ADDON_BUILD = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")


@pytest.mark.parametrize("env", ENVS)
def test_addons_pinned_to_a_build_for_the_environments_kubernetes_minor(env, cluster, eks):
    minor = tfvars(env, "cluster")["kubernetes_version"]
    builds = cluster.locals["addon_builds"]
    assert minor in builds, f"{env}: no addon builds for Kubernetes {minor} in addons.tf"
    assert set(builds[minor]) == ADDONS
    for name, version in builds[minor].items():
        assert ADDON_BUILD.match(version), f"{name} {version!r}"
    assert cluster.locals["addon_versions"] == "${local.addon_builds[var.kubernetes_version]}"
    assert set(eks["addons"]) == ADDONS
    for name, addon in eks["addons"].items():
        # The module defaults most_recent to true; a pinned addon_version wins over it, and
        # most_recent = false keeps the lookup from resolving a newer build.
        assert addon.get("addon_version") == f'${{local.addon_versions["{name}"]}}', name
        assert addon.get("most_recent") is False, name


def test_addon_pins_carry_the_renovate_marker():
    text = (Path(__file__).resolve().parents[1] / "stacks" / "cluster" / "addons.tf").read_text()
    lines = [line for line in text.splitlines() if "eksbuild" in line]
    assert lines
    import json

    # The custom manager's regex (Renovate config): the addon filter is the packageName.
    manager = re.compile(r'"(?P<name>[\w-]+)"\s*=\s*"(?P<currentValue>v[^"]+)"\s*# renovate: eksAddonsFilter=(?P<packageName>\{[^}]+\})$')
    builds = stack("cluster").locals["addon_builds"]
    for line in lines:
        match = manager.search(line)
        assert match, line
        selector = json.loads(match["packageName"])
        assert selector["addonName"] == match["name"]
        assert builds[selector["kubernetesVersion"]][match["name"]] == match["currentValue"]


def test_vpc_cni_enforces_network_policies(cluster, eks):
    """Every NetworkPolicy in the Flux tree (task-api's, the runners' egress) depends on it."""
    import json

    vpc_cni = eks["addons"]["vpc-cni"]
    assert vpc_cni["before_compute"] is True
    assert vpc_cni["configuration_values"] == "${jsonencode(local.vpc_cni_configuration)}"
    configuration = json.loads(json.dumps(cluster.locals["vpc_cni_configuration"]))
    assert configuration.get("enableNetworkPolicy") == "true"
    # The network policy agent ships with the VPC CNI from 1.14 on.
    for minor, builds in cluster.locals["addon_builds"].items():
        major, minor_v = (int(x) for x in builds["vpc-cni"][1:].split(".")[:2])
        assert (major, minor_v) >= (1, 14), builds["vpc-cni"]


def test_no_irsa_provider_and_no_auto_mode_boundary(eks):
    """Pod Identity serves every workload; the Auto Mode node-role boundary input does nothing here."""
    assert eks["enable_irsa"] is False
    assert "node_iam_role_permissions_boundary" not in eks
    assert "compute_config" not in eks


def test_node_groups_are_exactly_the_three_pools(eks):
    assert set(eks["eks_managed_node_groups"]) == set(POOLS)


@pytest.mark.parametrize("pool", POOLS)
def test_every_pool_sized_from_variables_and_hardened(eks, pool):
    group = eks["eks_managed_node_groups"][pool]
    for size in ("min_size", "max_size", "desired_size"):
        assert group[size] == f"${{var.node_pools.{pool}.{size}}}"
    assert group["labels"]["node-pool"] == pool
    assert group["metadata_options"] == "${local.node_metadata_options}"
    assert group["iam_role_permissions_boundary"] == "${local.permissions_boundary_arn}"


def test_node_metadata_requires_imdsv2_and_hides_it_from_pods(cluster):
    opts = cluster.locals["node_metadata_options"]
    assert opts["http_tokens"] == "required"
    assert opts["http_put_response_hop_limit"] == 1


def test_node_volumes_encrypted(cluster):
    devices = cluster.locals["block_devices"]
    assert "encrypted = true" in devices
    assert "encrypted = false" not in devices


def test_runners_pool_spot_tainted_labelled(eks):
    runners = eks["eks_managed_node_groups"]["runners"]
    assert runners["capacity_type"] == "SPOT"
    assert runners["labels"] == {"node-pool": "runners"}
    taints = list(runners["taints"].values())
    assert taints == [{"key": "runners", "value": "true", "effect": "NO_SCHEDULE"}]


def test_apps_pool_on_demand_with_its_own_security_group(eks):
    apps = eks["eks_managed_node_groups"]["apps"]
    assert apps["capacity_type"] == "ON_DEMAND"
    assert apps["labels"] == {"node-pool": "apps"}
    assert apps["vpc_security_group_ids"] == ["${aws_security_group.apps_nodes.id}"]
    assert "taints" not in apps


@pytest.mark.parametrize("env", ENVS)
def test_pool_sizes_per_environment(env):
    pools = tfvars(env, "cluster")["node_pools"]
    assert set(pools) == set(POOLS)
    for name, pool in pools.items():
        assert isinstance(pool["max_size"], int) and pool["max_size"] > 0, f"{env}/{name}: max_size"
        assert pool["min_size"] <= pool["desired_size"] <= pool["max_size"], f"{env}/{name}"
    assert pools["runners"]["min_size"] == 0
    assert pools["runners"]["desired_size"] == 0
    assert pools["runners"]["max_size"] <= RUNNERS_MAX_CAP
    assert len(pools["runners"]["instance_types"]) >= 3, "spot needs several instance types"


def test_prod_has_redundant_system_and_apps_nodes():
    pools = tfvars("prod", "cluster")["node_pools"]
    assert pools["system"]["min_size"] >= 2
    assert pools["apps"]["min_size"] >= 2


def test_runners_min_zero_is_also_enforced_by_validation(cluster):
    validations = [v["condition"] for v in cluster.variables["node_pools"]["validation"]]
    assert any("runners.min_size == 0" in c for c in validations)


def test_prod_cluster_refuses_deletion(eks):
    assert eks["deletion_protection"] == '${var.environment == "prod"}'
