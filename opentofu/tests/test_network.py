"""Network stage: AZ spread, NAT per environment, endpoints, flow logs."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from opentofu_hcl import ENVS, stack, tfvars  # noqa: E402


@pytest.fixture(scope="module")
def network():
    return stack("network")


def test_vpc_spans_three_azs_with_public_private_database_subnets(network):
    vpc = network.module("vpc")
    assert vpc["azs"] == "${var.availability_zones}"
    for kind in ("private", "public", "database"):
        assert vpc[f"{kind}_subnets"] == f"${{local.{kind}_subnets}}"
        assert network.locals[f"{kind}_subnets"].startswith("${[for i in range(3) :")
    for env in ENVS:
        zones = tfvars(env, "network")["availability_zones"]
        assert len(zones) == 3 and len(set(zones)) == 3


def test_subnet_plan_fits_the_vpc_without_overlap(network):
    """Evaluates the cidrsubnet() plan of main.tf for each environment's VPC range."""
    import re

    plans = {}
    for kind in ("private", "public", "database"):
        m = re.search(r"cidrsubnet\(var\.vpc_cidr, (\d+), (?:(\d+) \+ )?i\)", network.locals[f"{kind}_subnets"])
        assert m, network.locals[f"{kind}_subnets"]
        plans[kind] = (int(m.group(1)), int(m.group(2) or 0))
    for env in ENVS:
        vpc = ipaddress.ip_network(tfvars(env, "network")["vpc_cidr"])
        subnets = []
        for newbits, offset in plans.values():
            subnets += [list(vpc.subnets(prefixlen_diff=newbits))[offset + i] for i in range(3)]
        for i, a in enumerate(subnets):
            assert a.subnet_of(vpc)
            for b in subnets[i + 1 :]:
                assert not a.overlaps(b), f"{env}: {a} overlaps {b}"
    cidrs = [ipaddress.ip_network(tfvars(env, "network")["vpc_cidr"]) for env in ENVS]
    for i, a in enumerate(cidrs):
        for b in cidrs[i + 1 :]:
            assert not a.overlaps(b), "environments must not overlap (peering, VPN)"


def test_nat_gateway_per_az_follows_the_variable(network):
    vpc = network.module("vpc")
    assert vpc["enable_nat_gateway"] is True
    assert vpc["one_nat_gateway_per_az"] == "${var.nat_gateway_per_az}"
    assert vpc["single_nat_gateway"] == "${!var.nat_gateway_per_az}"


@pytest.mark.parametrize("env,per_az", [("dev", False), ("staging", False), ("prod", True)])
def test_nat_choice_per_environment(env, per_az):
    assert tfvars(env, "network")["nat_gateway_per_az"] is per_az


def test_database_subnets_have_no_internet_route(network):
    vpc = network.module("vpc")
    assert vpc["create_database_subnet_group"] is True
    assert vpc["create_database_nat_gateway_route"] is False
    assert vpc["create_database_internet_gateway_route"] is False
    assert vpc["map_public_ip_on_launch"] is False


def test_flow_logs_all_traffic_encrypted(network):
    vpc = network.module("vpc")
    assert vpc["enable_flow_log"] is True
    assert vpc["flow_log_traffic_type"] == "ALL"
    assert vpc["flow_log_cloudwatch_log_group_kms_key_id"] == "${aws_kms_key.logs.arn}"
    assert network.resource("aws_kms_key", "logs")["enable_key_rotation"] is True
    assert vpc["vpc_flow_log_permissions_boundary"] == "${local.permissions_boundary_arn}"


def test_vpc_endpoints_cover_s3_ecr_sts_logs_secrets(network):
    endpoints = network.module("vpc_endpoints")["endpoints"]
    assert 'service_type = "Gateway"' in endpoints and 'service = "s3"' in endpoints
    assert "for svc in var.interface_endpoints" in endpoints
    default = set(network.variables["interface_endpoints"]["default"])
    assert {"ecr.api", "ecr.dkr", "sts", "logs", "secretsmanager"} <= default
    rule = network.resource("aws_vpc_security_group_ingress_rule", "vpc_endpoints_https")
    assert rule["cidr_ipv4"] == "${module.vpc.vpc_cidr_block}"
    assert (rule["from_port"], rule["to_port"]) == (443, 443)


def test_default_security_group_denies_everything(network):
    vpc = network.module("vpc")
    assert vpc["manage_default_security_group"] is True
    assert vpc["default_security_group_ingress"] == []
    assert vpc["default_security_group_egress"] == []
