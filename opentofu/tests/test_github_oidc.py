"""GitHub OIDC federation: who can assume which role, read from the HCL itself."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from opentofu_hcl import ENVS, MODULES, interpolate, load_config, load_file, stack, tfvars  # noqa: E402

REPOSITORY = "example-org/task-platform"
OIDC_HOST = "token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def role_module():
    return load_config(MODULES / "github-oidc-role")


@pytest.fixture(scope="module")
def global_stack():
    return stack("global")


def trust_statements(role_module):
    trust = role_module.data["aws_iam_policy_document"]["trust"]
    return trust["statement"]


def test_trust_policy_is_one_web_identity_statement(role_module):
    statements = trust_statements(role_module)
    assert len(statements) == 1
    stmt = statements[0]
    assert stmt.get("effect", "Allow") == "Allow"
    assert stmt["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert stmt["principals"] == [{"type": "Federated", "identifiers": ["${var.oidc_provider_arn}"]}]
    role = role_module.resource("aws_iam_role", "this")
    assert role["assume_role_policy"] == "${data.aws_iam_policy_document.trust.json}"


def test_trust_conditions_pin_audience_and_subject_with_string_equals(role_module):
    conditions = trust_statements(role_module)[0]["condition"]
    by_key = {}
    for cond in conditions:
        assert cond["test"] == "StringEquals", f"{cond['variable']} uses {cond['test']}"
        key = interpolate(cond["variable"], role_module)
        by_key[key] = [interpolate(v, role_module) for v in cond["values"]]
    assert set(by_key) == {f"{OIDC_HOST}:aud", f"{OIDC_HOST}:sub"}
    assert by_key[f"{OIDC_HOST}:aud"] == ["sts.amazonaws.com"]
    assert by_key[f"{OIDC_HOST}:sub"] == [
        "repo:${var.github_repository}:environment:${var.github_environment}"
    ]


def _validation_regex(role_module, variable):
    condition = role_module.variables[variable]["validation"][0]["condition"]
    match = re.search(r'regex\("(.+?)", var\.', condition)
    assert match, condition
    return match.group(1).replace("\\\\", "\\")


@pytest.mark.parametrize(
    "variable,good,bad",
    [
        ("github_repository", [REPOSITORY], ["example-org/*", "*", "example-org/task-platform:*", "example-org"]),
        ("github_environment", ["prod", "dev-plan", "release"], ["*", "prod*", "dev:ref", "prod/x"]),
    ],
)
def test_inputs_refuse_wildcards(role_module, variable, good, bad):
    pattern = re.compile(_validation_regex(role_module, variable))
    for value in good:
        assert pattern.fullmatch(value), value
    for value in bad:
        assert not pattern.fullmatch(value), value


def _subjects(global_stack, env_values):
    """sub claim each role of the global stack trusts, per environment."""
    subjects = {}
    gvars = load_file(Path(global_stack.path).parents[1] / "environments/global/global.tfvars")
    repo = gvars.get("github_repository", global_stack.variables["github_repository"]["default"])
    for name, call in global_stack.modules.items():
        if call["source"] != "../../modules/github-oidc-role":
            continue
        assert call["github_repository"] == "${var.github_repository}", name
        keys = env_values if "for_each" in call else [None]
        for key in keys:
            environment = call["github_environment"].replace("${each.key}", key or "")
            subjects[(name, key)] = f"repo:{repo}:environment:{environment}"
    return subjects


def test_every_role_trusts_exactly_its_github_environment(global_stack):
    envs = load_file(global_stack.path.parents[1] / "environments/global/global.tfvars")["environments"]
    assert sorted(envs) == sorted(ENVS)
    subjects = _subjects(global_stack, envs)
    expected = {("release_role", None): f"repo:{REPOSITORY}:environment:release"}
    for env in ENVS:
        expected[("plan_role", env)] = f"repo:{REPOSITORY}:environment:{env}-plan"
        expected[("apply_role", env)] = f"repo:{REPOSITORY}:environment:{env}"
    assert subjects == expected
    assert len(set(subjects.values())) == len(subjects), "two roles share a subject"
    for subject in subjects.values():
        assert "*" not in subject and "?" not in subject


def test_oidc_provider_is_githubs_with_sts_audience(global_stack):
    provider = global_stack.resource("aws_iam_openid_connect_provider", "github")
    assert interpolate(provider["url"], global_stack) == f"https://{OIDC_HOST}"
    assert provider["client_id_list"] == ["sts.amazonaws.com"]


def test_plan_role_is_read_only(global_stack):
    plan = global_stack.module("plan_role")
    assert plan["managed_policy_arns"] == ["arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"]
    # Inline policies: state access, an explicit deny of data reads, the CI guard; nothing else.
    assert set(plan["inline_policies"]) == {"state", "guard", "ci"}
    guard = global_stack.data["aws_iam_policy_document"]["plan_guard"]
    assert guard["for_each"] == "${var.environments}"
    statements = {s["sid"]: s for s in guard["statement"]}
    assert all(s["effect"] == "Deny" for s in statements.values())
    assert "secretsmanager:GetSecretValue" in statements["NoSecretOrDataReads"]["actions"]
    # Another environment's state is not readable: only its own prefix escapes the deny.
    assert statements["NoOtherObjects"]["not_resources"] == [
        "${local.state_bucket_arn}/${each.key}/*",
        "${local.state_bucket_arn}/global/terraform.tfstate",
    ]


def test_apply_role_cannot_create_unbounded_roles(global_stack):
    statements = global_stack.data["aws_iam_policy_document"]["apply"]["statement"]
    by_sid = {s["sid"]: s for s in statements}
    create = by_sid["OwnRolesWithBoundary"]
    assert "iam:CreateRole" in create["actions"]
    assert create["condition"][0]["variable"] == "iam:PermissionsBoundary"
    for stmt in statements:
        if stmt.get("effect", "Allow") != "Allow" or stmt["sid"] == "OwnRolesWithBoundary":
            continue
        assert "iam:CreateRole" not in stmt["actions"], stmt["sid"]
        assert "iam:*" not in stmt["actions"], stmt["sid"]
        assert "*" not in stmt["actions"], stmt["sid"]
    boundary = global_stack.data["aws_iam_policy_document"]["workload_boundary"]["statement"]
    denies = [a for s in boundary if s.get("effect") == "Deny" for a in s["actions"]]
    assert {"iam:CreateRole", "iam:CreatePolicy*", "iam:Attach*", "iam:Put*", "iam:Pass*", "iam:Update*"} <= set(denies)


def test_release_role_pushes_only_the_two_repositories(global_stack):
    repos = global_stack.locals["ecr_repositories"]
    assert "task-api" in repos and "charts/task-api" in repos
    statements = global_stack.data["aws_iam_policy_document"]["release"]["statement"]
    push = next(s for s in statements if s["sid"] == "PushOwnRepositories")
    assert push["resources"] == "${[for r in aws_ecr_repository.this : r.arn]}"
    assert "ecr:PutImage" in push["actions"]
    wildcard = [s for s in statements if s["resources"] == ["*"]]
    assert [s["actions"] for s in wildcard] == [["ecr:GetAuthorizationToken"]]


def test_ecr_repositories_immutable_scanned_kms(global_stack):
    repo = global_stack.resource("aws_ecr_repository", "this")
    assert repo["image_tag_mutability"] == "IMMUTABLE"
    assert repo["image_scanning_configuration"][0]["scan_on_push"] is True
    enc = repo["encryption_configuration"][0]
    assert enc["encryption_type"] == "KMS"
    assert enc["kms_key"] == "${aws_kms_key.ecr.arn}"
    assert global_stack.resource("aws_kms_key", "ecr")["enable_key_rotation"] is True


def test_registry_never_expires_tagged_artifacts(global_stack):
    policy = global_stack.resource("aws_ecr_lifecycle_policy", "this")["policy"]
    assert 'tagStatus = "untagged"' in policy
    assert '"any"' not in policy and '"tagged"' not in policy
