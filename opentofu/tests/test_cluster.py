"""Cluster stage: API exposure, encryption, logging, node pools, access."""

from __future__ import annotations

import ipaddress
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


def test_api_endpoint_private_and_public_restricted(eks, cluster):
    assert eks["endpoint_private_access"] is True
    assert eks["endpoint_public_access"] == "${var.endpoint_public_access}"
    assert eks["endpoint_public_access_cidrs"] == "${var.endpoint_public_access_cidrs}"
    assert cluster.variables["endpoint_public_access"]["default"] is False
    assert "/0" in cluster.variables["endpoint_public_access_cidrs"]["validation"][0]["condition"]


@pytest.mark.parametrize("env", ENVS)
def test_public_endpoint_never_open_to_the_world(env):
    values = tfvars(env, "cluster")
    cidrs = values.get("endpoint_public_access_cidrs", [])
    if values.get("endpoint_public_access"):
        assert cidrs, f"{env}: public endpoint without a CIDR list would default to 0.0.0.0/0"
    for cidr in cidrs:
        net = ipaddress.ip_network(cidr)
        assert net.prefixlen >= 16, f"{env}: {cidr} is too wide for the API endpoint"


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
    assert "AmazonEKSViewPolicy" in entries["ci-plan"]["policy_associations"]["view"]["policy_arn"]


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
