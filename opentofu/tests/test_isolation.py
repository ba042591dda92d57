"""Environments are isolated: what each CI role and each bounded workload role may really do,
evaluated from the parsed policies (see iam_policy.py), not from their text."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import iam_policy as iam  # noqa: E402

ENVS = iam.envs()
PAIRS = [(a, b) for a, b in itertools.permutations(ENVS, 2)]


def _allowed(role: iam.Role, requests):
    return [f"{what}: {req.action} on {req.resource} ({role.decide(req)[1]})" for what, req in requests if role.allows(req)]


def _refused(role: iam.Role, requests):
    return [f"{what}: {req.action} on {req.resource} ({role.decide(req)[1]})" for what, req in requests if not role.allows(req)]


def test_every_environment_has_its_roles_and_boundary():
    assert ENVS == ("dev", "prod", "staging")
    for env in ENVS:
        assert iam.apply_role(env).identity and iam.plan_role(env).identity
        assert iam.boundary(env).statements


@pytest.mark.parametrize(("actor", "target"), PAIRS, ids=lambda v: v)
def test_apply_role_can_change_nothing_of_another_environment(actor, target):
    role = iam.apply_role(actor)
    assert _allowed(role, iam.mutations(target, actor)) == []


@pytest.mark.parametrize("env", ENVS)
def test_apply_role_can_manage_its_own_environment(env):
    """The control: the same requests on its own resources are allowed, so the refusals above
    come from the scoping, not from a role that can do nothing."""
    role = iam.apply_role(env)
    assert _refused(role, iam.mutations(env, env)) == []


@pytest.mark.parametrize("env", ENVS)
def test_apply_role_can_create_what_its_stacks_create(env):
    assert _refused(iam.apply_role(env), iam.stack_needs(env)) == []


@pytest.mark.parametrize(("actor", "target"), PAIRS, ids=lambda v: v)
def test_apply_role_cannot_create_for_another_environment(actor, target):
    """The same creations, tagged for or named after another environment. Shared by design:
    account-wide reads and service-linked roles, the engine's default option group, and RDS
    creating a master secret (RDS names it rds!db-<uuid>; a new secret touches nothing of
    another environment, and deleting or rotating one needs its instance's tag)."""
    allowed = _allowed(iam.apply_role(actor), iam.stack_needs(target))
    shared = {"look up addon builds", "use the default option group", "create the EKS service-linked role",
              "read the AMI release parameter", "read the global outputs", "let RDS create the master secret"}
    assert [a for a in allowed if a.split(":")[0] not in shared] == []


@pytest.mark.parametrize("env", ENVS)
def test_plan_role_changes_nothing(env):
    role = iam.plan_role(env)
    for target in ENVS:
        assert _allowed(role, iam.mutations(target, env)) == [], target


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("kind", ["plan", "apply"])
def test_no_ci_role_reads_secret_values_or_other_state(kind, env):
    role = iam.plan_role(env) if kind == "plan" else iam.apply_role(env)
    for target in ENVS:
        reads = iam.secret_reads(target)
        if target == env:
            reads = [(w, r) for w, r in reads if r.action != "s3:GetObject"]
        assert _allowed(role, reads) == [], target


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("kind", ["plan", "apply"])
def test_no_ci_role_can_administer_or_delete_the_state_key(kind, env):
    role = iam.plan_role(env) if kind == "plan" else iam.apply_role(env)
    assert _allowed(role, iam.state_key_requests()) == []
    # ...while it can still use it for its own state.
    use = iam.Request("kms:GenerateDataKey", iam.state_key_arn())
    assert role.allows(use), role.decide(use)
    own = iam.Request("s3:GetObject", iam.arn("s3", f"{iam.state_bucket()}/{env}/network/terraform.tfstate"))
    assert role.allows(own), role.decide(own)


@pytest.mark.parametrize("env", ENVS)
def test_the_boundary_bounds_a_role_given_every_permission(env):
    role = iam.bounded_admin(env)
    assert _allowed(role, iam.boundary_escapes(env)) == []


@pytest.mark.parametrize(("actor", "target"), PAIRS, ids=lambda v: v)
def test_a_bounded_role_cannot_reach_another_environment(actor, target):
    role = iam.bounded_admin(actor)
    assert _allowed(role, iam.cross_environment_workload_actions(target, actor)) == []


@pytest.mark.parametrize("env", ENVS)
def test_the_boundary_leaves_what_the_workloads_need(env):
    assert _refused(iam.bounded_admin(env), iam.own_workload_needs(env)) == []


@pytest.mark.parametrize("env", ENVS)
def test_the_boundary_grants_no_unconditioned_wildcard(env):
    for st in iam.boundary(env).statements:
        if st.effect != "Allow":
            continue
        assert "*" not in st.actions, st.sid
        service_wide = [a for a in st.actions if a.endswith(":*")]
        if service_wide:
            assert st.conditions or "*" not in st.resources, f"{st.sid}: {service_wide} on * without a condition"


# ---------------------------------------------------------------- the evaluator itself


def test_evaluator_applies_deny_over_allow_and_the_boundary():
    allow = iam.Statement("a", "Allow", actions=("s3:*",), resources=("*",))
    deny = iam.Statement("d", "Deny", actions=("s3:DeleteObject",), resources=("arn:aws:s3:::b/*",))
    role = iam.Role("r", [iam.Policy("p", (allow, deny))])
    assert role.allows(iam.Request("s3:GetObject", "arn:aws:s3:::b/k"))
    assert not role.allows(iam.Request("s3:deleteobject", "arn:aws:s3:::b/k"))
    bounded = iam.Role("r", [iam.Policy("p", (allow,))], iam.Policy("b", (iam.Statement("b", "Allow", actions=("s3:Get*",), resources=("*",)),)))
    assert bounded.allows(iam.Request("s3:GetObject", "arn:aws:s3:::b/k"))
    assert not bounded.allows(iam.Request("s3:PutObject", "arn:aws:s3:::b/k"))


def test_evaluator_conditions():
    c = iam.Condition
    assert iam.condition_holds(c("StringEquals", "aws:resourcetag/environment", ("dev",)), {"aws:resourcetag/environment": "dev"})
    assert not iam.condition_holds(c("StringEquals", "aws:resourcetag/environment", ("dev",)), {})
    assert iam.condition_holds(c("StringEqualsIfExists", "aws:resourcetag/environment", ("dev",)), {})
    assert not iam.condition_holds(c("StringEqualsIfExists", "aws:resourcetag/environment", ("dev",)), {"aws:resourcetag/environment": "prod"})
    assert iam.condition_holds(c("Null", "ec2:createaction", ("true",)), {})
    assert not iam.condition_holds(c("Null", "ec2:createaction", ("true",)), {"ec2:createaction": "RunInstances"})
    names = "route53:changeresourcerecordsetsnormalizedrecordnames"
    like = c("ForAllValues:StringLike", names, ("_*.dev.tasks.example.com",))
    assert iam.condition_holds(like, {names: ["_a.dev.tasks.example.com"]})
    assert not iam.condition_holds(like, {names: ["_a.dev.tasks.example.com", "_b.prod.tasks.example.com"]})
    assert iam.condition_holds(c("ForAnyValue:StringEquals", "aws:calledvia", ("rds.amazonaws.com",)), {"aws:calledvia": ["rds.amazonaws.com"]})
    assert not iam.condition_holds(c("StringNotLike", "s3:prefix", ("dev/*",)), {"s3:prefix": "dev/x"})


def test_names_are_substituted_per_environment():
    policy = iam.policy_from_document("apply", "staging")
    cluster = next(s for s in policy.statements if s.sid == "OwnCluster")
    assert cluster.resources[0] == "arn:aws:eks:eu-west-1:111111111111:cluster/task-platform-staging"
    for st in policy.statements:
        for text in st.resources + st.not_resources:
            assert "${" not in text


@pytest.mark.parametrize("env", ENVS)
def test_apply_role_cannot_adopt_untagged_resources(env):
    """Tagging an untagged interface (the VPC CNI's, of any cluster) would make it the actor's."""
    role = iam.apply_role(env)
    adopt = iam.Request("ec2:CreateTags", iam.arn("ec2", "network-interface/eni-untagged"), {"aws:RequestTag/environment": env})
    assert not role.allows(adopt), role.decide(adopt)
