"""Database stage: encryption, exposure, TLS, resilience."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from opentofu_hcl import ENVS, stack, tfvars, walk_strings  # noqa: E402


@pytest.fixture(scope="module")
def database():
    return stack("database")


@pytest.fixture(scope="module")
def db(database):
    return database.module("db")


def test_storage_and_insights_encrypted_with_rotated_cmk(database, db):
    assert db["storage_encrypted"] is True
    assert db["kms_key_id"] == "${aws_kms_key.database.arn}"
    assert db["performance_insights_enabled"] is True
    assert db["performance_insights_kms_key_id"] == "${aws_kms_key.database.arn}"
    assert database.resource("aws_kms_key", "database")["enable_key_rotation"] is True


def test_master_password_never_in_state(db):
    assert db["manage_master_user_password"] is True
    assert db["master_user_secret_kms_key_id"] == "${aws_kms_key.database.arn}"
    assert not {"password", "password_wo"} & set(db), "a password argument would bypass Secrets Manager"


def test_not_public_and_in_database_subnets(db):
    assert db["publicly_accessible"] is False
    assert db["create_db_subnet_group"] is False
    assert db["db_subnet_group_name"] == "${local.network.database_subnet_group_name}"
    assert db["vpc_security_group_ids"] == ["${aws_security_group.database.id}"]


def test_tls_forced(db):
    params = {p["name"]: p["value"] for p in db["parameters"]}
    assert params["rds.force_ssl"] == "1"
    assert db["create_db_parameter_group"] is True


def test_only_the_apps_nodes_reach_5432(database):
    sg = database.resource("aws_security_group", "database")
    assert "ingress" not in sg and "egress" not in sg, "inline rules would bypass the rule resources"
    rules = database.resources.get("aws_vpc_security_group_ingress_rule", {})
    legacy = database.resources.get("aws_security_group_rule", {})
    assert not legacy
    assert len(rules) == 1
    rule = next(iter(rules.values()))
    assert rule["security_group_id"] == "${aws_security_group.database.id}"
    assert rule["referenced_security_group_id"] == "${local.cluster.apps_node_security_group_id}"
    assert not {"cidr_ipv4", "cidr_ipv6", "prefix_list_id"} & set(rule)
    assert (rule["from_port"], rule["to_port"], rule["ip_protocol"]) == (
        "${local.db_port}",
        "${local.db_port}",
        "tcp",
    )
    assert database.locals["db_port"] == 5432


def test_apps_security_group_is_the_one_on_apps_nodes_only():
    cluster = stack("cluster")
    assert cluster.outputs["apps_node_security_group_id"]["value"] == "${aws_security_group.apps_nodes.id}"
    groups = cluster.module("eks")["eks_managed_node_groups"]
    holders = [n for n, g in groups.items() if "${aws_security_group.apps_nodes.id}" in g.get("vpc_security_group_ids", [])]
    assert holders == ["apps"]


def test_no_open_cidr_anywhere_in_the_database_stage(database):
    everything = [database.resources, database.modules, database.data]
    assert not [s for s in walk_strings(everything) if "0.0.0.0/0" in s or "::/0" in s]


def test_resilience_settings_follow_variables(db):
    assert db["multi_az"] == "${var.multi_az}"
    assert db["deletion_protection"] == "${var.deletion_protection}"
    assert db["backup_retention_period"] == "${var.backup_retention_days}"
    assert db["skip_final_snapshot"] is False


def test_prod_is_multi_az_protected_and_backed_up():
    prod = tfvars("prod", "database")
    assert prod["multi_az"] is True
    assert prod["deletion_protection"] is True
    assert prod["backup_retention_days"] >= 14


@pytest.mark.parametrize("env", ENVS)
def test_every_environment_keeps_backups(env):
    assert tfvars(env, "database")["backup_retention_days"] >= 1


def test_master_password_rotation_is_scheduled_outside_the_maintenance_and_backup_windows(database, db):
    """RDS rotates the managed password even when told nothing (it cannot be disabled at
    creation); the stack makes it a known weekly hour that overlaps neither window."""
    import re

    assert db["manage_master_user_password_rotation"] is True
    assert db["master_user_password_rotate_immediately"] is False
    assert db["master_user_password_rotation_schedule_expression"] == "${var.master_password_rotation_schedule}"
    schedule = database.variables["master_password_rotation_schedule"]["default"]
    minute, hour, _, _, weekday, _ = re.fullmatch(r"cron\((.+)\)", schedule).group(1).split()
    duration = int(re.fullmatch(r"(\d+)h", db["master_user_password_rotation_duration"]).group(1))
    start = int(hour) * 60 + int(minute)
    end = start + duration * 60

    def window(text: str) -> tuple[int, int]:
        parts = re.findall(r"(\d\d):(\d\d)", text)
        (h1, m1), (h2, m2) = parts
        return int(h1) * 60 + int(m1), int(h2) * 60 + int(m2)

    maint_day = db["maintenance_window"].split(":")[0].upper()
    maint = window(db["maintenance_window"])
    backup = window(db["backup_window"])
    assert backup[1] <= start or end <= backup[0], "rotation overlaps the backup window"
    if weekday.upper() == maint_day:
        assert maint[1] <= start or end <= maint[0], "rotation overlaps the maintenance window"
