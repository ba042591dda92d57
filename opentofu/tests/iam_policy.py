"""Effective permissions of the CI roles and of the workload permissions boundary, computed from
the policy documents written in stacks/global (parsed with python-hcl2), the way IAM evaluates
them: an explicit Deny anywhere wins; otherwise the identity policies must Allow and, for a role
with a permissions boundary, the boundary must Allow too. Statements are matched on actions
(with `*`/`?` wildcards, case-insensitive), resources (ARN wildcards), NotAction/NotResource,
and conditions (String*/Arn*/Null/Bool operators, `...IfExists`, `ForAnyValue:`/`ForAllValues:`)
against a request context. The stack's names (project, partition, region, account, each.key,
locals computed per environment) are substituted into the documents first.

Role compositions are read from the module calls (managed_policy_arns, inline_policies), so
attaching another document to a role changes what is evaluated here.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentofu_hcl import ENVIRONMENTS, STACKS, load_file, stack

PROJECT = "task-platform"
PARTITION = "aws"
ACCOUNT = "111111111111"


@functools.lru_cache(maxsize=None)
def global_values() -> dict[str, Any]:
    values = load_file(ENVIRONMENTS / "global" / "global.tfvars")
    cfg = stack("global")
    for name, var in cfg.variables.items():
        values.setdefault(name, var.get("default"))
    return values


def region() -> str:
    return global_values()["aws_region"]


# ------------------------------------------------------------------ substitution of names

_FOR_MAP = re.compile(r'^\$\{\{\s*for (\w+) in var\.environments\s*:\s*\1\s*=>\s*"(.*)"\s*\}\}$', re.S)
_EXPR = re.compile(r"\$\{([^{}]+)\}")


def _locals(env: str) -> dict[str, str]:
    cfg = stack("global")
    out = {
        "partition": PARTITION,
        "account_id": ACCOUNT,
    }
    out["state_bucket_arn"] = f"arn:{PARTITION}:s3:::{global_values()['state_bucket']}"
    out["region_account"] = f"{region()}:{ACCOUNT}"
    # Per-environment maps: { for env in var.environments : env => "<template>" }
    for name, value in cfg.locals.items():
        if isinstance(value, str):
            match = _FOR_MAP.match(value)
            if match:
                loop, template = match.groups()
                out[f"{name}[each.key]"] = template.replace(f"${{{loop}}}", env)
    return out


def substitute(text: str, env: str) -> str:
    cfg = stack("global")
    local_values = _locals(env)
    variables = global_values()

    def one(match: re.Match) -> str:
        expr = match.group(1).strip()
        if expr == "each.key":
            return env
        if expr.startswith("var."):
            value = variables.get(expr[4:])
            if isinstance(value, str):
                return value
        if expr.startswith("local."):
            key = expr[6:]
            if key in local_values:
                return local_values[key]
            value = cfg.locals.get(key)
            if isinstance(value, str) and "${" not in value.replace("${local.", "").replace("${var.", "").replace("${each.key}", ""):
                return value
        m = re.fullmatch(r"aws_iam_policy\.(\w+)\[each\.key\]\.arn", expr)
        if m:
            name = cfg.resource("aws_iam_policy", m.group(1))["name"]
            return f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{name}"
        return match.group(0)

    for _ in range(10):
        new = _EXPR.sub(one, text)
        if new == text:
            break
        text = new
    assert "${" not in text, f"cannot resolve {text!r} for {env}"
    return text


# ------------------------------------------------------------------ statements and evaluation


@dataclass(frozen=True)
class Condition:
    test: str
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    not_resources: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Policy:
    name: str
    statements: tuple[Statement, ...]


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _wild(pattern: str, value: str, case_insensitive: bool = False) -> bool:
    if case_insensitive:
        pattern, value = pattern.lower(), value.lower()
    # fnmatch's [] classes do not exist in IAM; escape them.
    pattern = pattern.replace("[", "[[]")
    return fnmatch.fnmatchcase(value, pattern)


def policy_from_document(doc_name: str, env: str) -> Policy:
    doc = stack("global").data["aws_iam_policy_document"][doc_name]
    statements = []
    for i, st in enumerate(doc.get("statement", [])):
        conds = tuple(
            Condition(c["test"], substitute(c["variable"], env).lower(), tuple(substitute(v, env) for v in _list(c["values"])))
            for c in st.get("condition", [])
        )
        statements.append(
            Statement(
                sid=st.get("sid", f"#{i}"),
                effect=st.get("effect", "Allow"),
                actions=tuple(_list(st.get("actions"))),
                not_actions=tuple(_list(st.get("not_actions"))),
                resources=tuple(substitute(r, env) for r in _list(st.get("resources"))),
                not_resources=tuple(substitute(r, env) for r in _list(st.get("not_resources"))),
                conditions=conds,
            )
        )
    return Policy(f"{doc_name}[{env}]", tuple(statements))


# AWS managed ReadOnlyAccess, over-approximated (every read verb on every resource, including
# secretsmanager:GetSecretValue and s3:GetObject): what it does not grant, this model grants,
# so a proof that a read is impossible rests on our own denies, not on AWS's list.
READ_ONLY_ACCESS = Policy(
    "ReadOnlyAccess",
    (Statement("ReadOnlyAccess", "Allow", actions=("*:Describe*", "*:Get*", "*:List*", "*:BatchGet*", "*:View*"), resources=("*",)),),
)
ADMINISTRATOR = Policy("AdministratorAccess", (Statement("Everything", "Allow", actions=("*",), resources=("*",)),))


@dataclass
class Request:
    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)

    def ctx(self) -> dict[str, Any]:
        # Global keys every call carries (IAM, Route 53 and S3 bucket calls name us-east-1 or
        # the bucket's region; the stacks' calls go to the environment's region).
        ctx = {"aws:requestedregion": region(), "aws:principalaccount": ACCOUNT}
        ctx.update({k.lower(): v for k, v in self.context.items()})
        return ctx


_OPS = {
    "StringEquals": lambda p, v: p == v,
    "StringNotEquals": lambda p, v: p != v,
    "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
    "StringLike": lambda p, v: _wild(p, v),
    "StringNotLike": lambda p, v: not _wild(p, v),
    "ArnEquals": lambda p, v: p == v,
    "ArnLike": lambda p, v: _wild(p, v),
    "ArnNotLike": lambda p, v: not _wild(p, v),
    "Bool": lambda p, v: p.lower() == str(v).lower(),
}
_NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotLike"}


def condition_holds(cond: Condition, ctx: dict[str, Any]) -> bool:
    test = cond.test
    qualifier = None
    if ":" in test:
        qualifier, test = test.split(":", 1)
    if_exists = test.endswith("IfExists")
    if if_exists:
        test = test[: -len("IfExists")]
    present = cond.key in ctx
    if test == "Null":
        return (cond.values[0].lower() == "true") == (not present)
    if test not in _OPS:
        raise AssertionError(f"condition operator {cond.test} is not modelled")
    if not present:
        if qualifier == "ForAllValues":
            return True
        return if_exists
    value = ctx[cond.key]
    values = value if isinstance(value, list) else [value]
    op = _OPS[test]

    def one(v: str) -> bool:
        if test in _NEGATED:
            return all(op(p, v) for p in cond.values)
        return any(op(p, v) for p in cond.values)

    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    return any(one(v) for v in values)


def statement_matches(st: Statement, req: Request) -> bool:
    if st.actions and not any(_wild(a, req.action, case_insensitive=True) for a in st.actions):
        return False
    if st.not_actions and any(_wild(a, req.action, case_insensitive=True) for a in st.not_actions):
        return False
    if st.resources and not any(_wild(r, req.resource) for r in st.resources):
        return False
    if st.not_resources and any(_wild(r, req.resource) for r in st.not_resources):
        return False
    ctx = req.ctx()
    return all(condition_holds(c, ctx) for c in st.conditions)


@dataclass
class Role:
    name: str
    identity: list[Policy]
    boundary: Policy | None = None

    def decide(self, req: Request) -> tuple[bool, str]:
        """(allowed, reason): the statement that decided."""
        for policy in self.identity + ([self.boundary] if self.boundary else []):
            for st in policy.statements:
                if st.effect == "Deny" and statement_matches(st, req):
                    return False, f"denied by {policy.name}:{st.sid}"
        allow = next(
            (f"{p.name}:{s.sid}" for p in self.identity for s in p.statements if s.effect == "Allow" and statement_matches(s, req)),
            None,
        )
        if allow is None:
            return False, "no identity statement allows it"
        if self.boundary is not None:
            bound = next((s.sid for s in self.boundary.statements if s.effect == "Allow" and statement_matches(s, req)), None)
            if bound is None:
                return False, f"outside the boundary {self.boundary.name}"
        return True, f"allowed by {allow}"

    def allows(self, req: Request) -> bool:
        return self.decide(req)[0]


_DOC_REF = re.compile(r"^\$\{data\.aws_iam_policy_document\.(\w+)(\[each\.key\])?\.json\}$")
_POLICY_REF = re.compile(r"^\$\{aws_iam_policy\.(\w+)\[each\.key\]\.arn\}$")


def _policy_from_ref(ref: str, env: str) -> Policy:
    match = _DOC_REF.match(ref)
    if match:
        return policy_from_document(match.group(1), env)
    match = _POLICY_REF.match(ref)
    if match:
        resource = stack("global").resource("aws_iam_policy", match.group(1))
        return _policy_from_ref(resource["policy"], env)
    if ref.endswith(":iam::aws:policy/ReadOnlyAccess}") or ref.endswith(":iam::aws:policy/ReadOnlyAccess"):
        return READ_ONLY_ACCESS
    raise AssertionError(f"policy reference {ref!r} is not modelled")


def ci_role(module_name: str, env: str) -> Role:
    call = stack("global").module(module_name)
    assert call["source"] == "../../modules/github-oidc-role"
    identity = [_policy_from_ref(ref, env) for ref in _list(call.get("managed_policy_arns"))]
    identity += [_policy_from_ref(ref, env) for ref in (call.get("inline_policies") or {}).values()]
    return Role(f"{module_name}[{env}]", identity)


def plan_role(env: str) -> Role:
    return ci_role("plan_role", env)


def apply_role(env: str) -> Role:
    return ci_role("apply_role", env)


def boundary(env: str) -> Policy:
    resource = stack("global").resource("aws_iam_policy", "workload_boundary")
    return _policy_from_ref(resource["policy"], env)


def bounded_admin(env: str) -> Role:
    """The worst role the apply role can create: any identity policy, with the boundary."""
    return Role(f"bounded-admin[{env}]", [ADMINISTRATOR], boundary(env))


# ------------------------------------------------------------------ the environment's resources


def arn(service: str, resource: str, region_scoped: bool = True) -> str:
    where = f"{region()}:{ACCOUNT}" if region_scoped else f":{ACCOUNT}" if service == "iam" else ":"
    if service == "iam":
        return f"arn:{PARTITION}:iam::{ACCOUNT}:{resource}"
    if service in ("s3", "route53"):
        return f"arn:{PARTITION}:{service}:::{resource}"
    return f"arn:{PARTITION}:{service}:{where}:{resource}"


def state_key_arn() -> str:
    return global_values()["state_kms_key_arn"]


def state_bucket() -> str:
    return global_values()["state_bucket"]


def domain(env: str) -> str:
    return f"{env}.{global_values()['dns_zone_name']}"


def env_tags(env: str) -> dict[str, str]:
    return {"aws:ResourceTag/environment": env}


def mutations(env: str, actor_env: str) -> list[tuple[str, Request]]:
    """Changes to environment `env`'s resources, as `actor_env`'s stacks would request them
    (new resources tagged with the actor's environment by default_tags)."""
    name = f"{PROJECT}-{env}"
    tagged = env_tags(env)
    own_request_tag = {"aws:RequestTag/environment": actor_env}
    db_arn = arn("rds", f"db:{name}")
    cluster = arn("eks", f"cluster/{name}")
    return [
        ("delete the VPC", Request("ec2:DeleteVpc", arn("ec2", f"vpc/vpc-{env}"), tagged)),
        ("create a subnet in the VPC", Request("ec2:CreateSubnet", arn("ec2", f"vpc/vpc-{env}"), {**tagged, **own_request_tag})),
        ("open the node security group", Request("ec2:AuthorizeSecurityGroupIngress", arn("ec2", f"security-group/sg-{env}-nodes"), {**tagged, **own_request_tag})),
        ("terminate a node", Request("ec2:TerminateInstances", arn("ec2", f"instance/i-{env}"), tagged)),
        ("retag a node into the actor's environment", Request("ec2:CreateTags", arn("ec2", f"instance/i-{env}"), {**tagged, **own_request_tag})),
        ("replace a route", Request("ec2:ReplaceRoute", arn("ec2", f"route-table/rtb-{env}"), tagged)),
        ("delete the cluster", Request("eks:DeleteCluster", cluster)),
        ("delete a node group", Request("eks:DeleteNodegroup", arn("eks", f"nodegroup/{name}/{name}-apps/0a1b"))),
        ("grant cluster access", Request("eks:CreateAccessEntry", cluster)),
        ("delete the database", Request("rds:DeleteDBInstance", db_arn)),
        ("modify the database", Request("rds:ModifyDBInstance", db_arn)),
        ("schedule deletion of the database key", Request("kms:ScheduleKeyDeletion", arn("kms", f"key/{env}-database"), tagged)),
        ("rewrite the database key policy", Request("kms:PutKeyPolicy", arn("kms", f"key/{env}-database"), tagged)),
        ("decrypt with the database key", Request("kms:Decrypt", arn("kms", f"key/{env}-database"), tagged)),
        ("repoint the database key alias", Request("kms:UpdateAlias", arn("kms", f"alias/{name}-database"))),
        ("delete the database secret", Request("secretsmanager:DeleteSecret", arn("secretsmanager", f"secret:rds!db-{env}-AbCdEf"), {"aws:ResourceTag/aws:rds:primaryDBInstanceArn": db_arn})),
        ("rotate the database secret", Request("secretsmanager:RotateSecret", arn("secretsmanager", f"secret:rds!db-{env}-AbCdEf"), {"aws:ResourceTag/aws:rds:primaryDBInstanceArn": db_arn})),
        ("delete the control-plane log group", Request("logs:DeleteLogGroup", arn("logs", f"log-group:/aws/eks/{name}/cluster"))),
        ("delete the certificate", Request("acm:DeleteCertificate", arn("acm", f"certificate/{env}"), tagged)),
        ("change a DNS record", Request("route53:ChangeResourceRecordSets", arn("route53", "hostedzone/Z0TASKS"), {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": [f"_a1b2.{domain(env)}"],
            "route53:ChangeResourceRecordSetsRecordTypes": ["CNAME"],
        })),
        ("give a workload role a new policy", Request("iam:PutRolePolicy", arn("iam", f"role/{name}-task-api"), {
            "iam:PermissionsBoundary": arn("iam", f"policy/{name}-workload-boundary"),
        })),
        ("create a role with the environment's boundary", Request("iam:CreateRole", arn("iam", f"role/{name}-new"), {
            "iam:PermissionsBoundary": arn("iam", f"policy/{name}-workload-boundary"),
        })),
        ("overwrite the state", Request("s3:PutObject", arn("s3", f"{state_bucket()}/{env}/cluster/terraform.tfstate"))),
    ]


def stack_needs(env: str) -> list[tuple[str, Request]]:
    """Calls the environment's stacks make on first apply (beyond changing what exists)."""
    name = f"{PROJECT}-{env}"
    tag = {"aws:RequestTag/environment": env}
    db_arn = arn("rds", f"db:{name}")
    return [
        ("create the VPC", Request("ec2:CreateVpc", arn("ec2", "vpc/*"), tag)),
        ("create a NAT gateway's address", Request("ec2:AllocateAddress", arn("ec2", "elastic-ip/*"), tag)),
        ("create a launch template", Request("ec2:CreateLaunchTemplate", arn("ec2", "launch-template/*"), tag)),
        ("tag a resource while creating it", Request("ec2:CreateTags", arn("ec2", "subnet/subnet-new"), {**tag, "ec2:CreateAction": "CreateSubnet"})),
        ("adopt the new VPC's default security group", Request("ec2:CreateTags", arn("ec2", "security-group/sg-default"), tag)),
        ("create a KMS key", Request("kms:CreateKey", "*", tag)),
        ("alias the key", Request("kms:CreateAlias", arn("kms", f"alias/{name}-database"))),
        ("create the control-plane log group", Request("logs:CreateLogGroup", arn("logs", f"log-group:/aws/eks/{name}/cluster"))),
        ("create the flow-log group", Request("logs:CreateLogGroup", arn("logs", f"log-group:/aws/vpc-flow-log/{name}"))),
        ("create the cluster", Request("eks:CreateCluster", arn("eks", f"cluster/{name}"))),
        ("look up addon builds", Request("eks:DescribeAddonVersions", "*")),
        ("create the database", Request("rds:CreateDBInstance", db_arn)),
        ("use the default option group", Request("rds:CreateDBInstance", arn("rds", "og:default:postgres-17"))),
        ("let RDS create the master secret", Request("secretsmanager:CreateSecret", arn("secretsmanager", f"secret:rds!db-{env}-AbCdEf"), {"aws:CalledVia": ["rds.amazonaws.com"]})),
        ("request the certificate", Request("acm:RequestCertificate", "*", tag)),
        ("write its validation record", Request("route53:ChangeResourceRecordSets", arn("route53", "hostedzone/Z0TASKS"), {
            "route53:ChangeResourceRecordSetsNormalizedRecordNames": [f"_a1b2.{domain(env)}"],
            "route53:ChangeResourceRecordSetsRecordTypes": ["CNAME"],
        })),
        ("pass the node role to EC2", Request("iam:PassRole", arn("iam", f"role/{name}-node-apps"), {"iam:PassedToService": "ec2.amazonaws.com"})),
        ("create the EKS service-linked role", Request("iam:CreateServiceLinkedRole", arn("iam", "role/aws-service-role/eks.amazonaws.com/AWSServiceRoleForAmazonEKS"), {"iam:AWSServiceName": "eks.amazonaws.com"})),
        ("read the AMI release parameter", Request("ssm:GetParameter", arn("ssm", "parameter/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/standard/recommended/release_version"))),
        ("take the state lock", Request("s3:PutObject", arn("s3", f"{state_bucket()}/{env}/network/terraform.tfstate.tflock"))),
        ("read the global outputs", Request("s3:GetObject", arn("s3", f"{state_bucket()}/global/terraform.tfstate"))),
    ]


def secret_reads(env: str) -> list[tuple[str, Request]]:
    name = f"{PROJECT}-{env}"
    db_arn = arn("rds", f"db:{name}")
    return [
        ("read the database secret", Request("secretsmanager:GetSecretValue", arn("secretsmanager", f"secret:rds!db-{env}-AbCdEf"), {"aws:ResourceTag/aws:rds:primaryDBInstanceArn": db_arn})),
        ("read the runners' GitHub App secret", Request("secretsmanager:GetSecretValue", arn("secretsmanager", f"secret:{name}/arc/github-app-AbCdEf"))),
        ("read another environment's state", Request("s3:GetObject", arn("s3", f"{state_bucket()}/{env}/database/terraform.tfstate"))),
    ]


STATE_KEY_ADMINISTRATION = [
    "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy", "kms:CreateGrant",
    "kms:DisableKeyRotation", "kms:UpdateAlias", "kms:DeleteAlias",
]


def state_key_requests() -> list[tuple[str, Request]]:
    return [(a, Request(a, state_key_arn())) for a in STATE_KEY_ADMINISTRATION]


def boundary_escapes(env: str) -> list[tuple[str, Request]]:
    """What no role of environment `env`'s stacks may do, whatever policy it is given."""
    name = f"{PROJECT}-{env}"
    return [
        ("create a role", Request("iam:CreateRole", arn("iam", f"role/{name}-x"))),
        ("attach AdministratorAccess to itself", Request("iam:AttachRolePolicy", arn("iam", f"role/{name}-task-api"))),
        ("pass a role", Request("iam:PassRole", arn("iam", f"role/{name}-node-apps"))),
        ("read the state", Request("s3:GetObject", arn("s3", f"{state_bucket()}/{env}/platform/terraform.tfstate"))),
        ("decrypt the state key", Request("kms:Decrypt", state_key_arn(), {"kms:ViaService": f"s3.{region()}.amazonaws.com"})),
        ("schedule deletion of its own database key", Request("kms:ScheduleKeyDeletion", arn("kms", f"key/{env}-database"), env_tags(env))),
        ("create an IAM user", Request("iam:CreateUser", arn("iam", "user/x"))),
        ("delete a DynamoDB table", Request("dynamodb:DeleteTable", arn("dynamodb", "table/x"))),
        ("invoke a Lambda", Request("lambda:InvokeFunction", arn("lambda", "function:x"))),
        ("write to any S3 bucket", Request("s3:PutObject", arn("s3", "any-bucket/x"))),
        ("delete its own cluster", Request("eks:DeleteCluster", arn("eks", f"cluster/{name}"))),
        ("push an image", Request("ecr:PutImage", arn("ecr", "repository/task-api"))),
    ]


def own_workload_needs(env: str) -> list[tuple[str, Request]]:
    """What the environment's workloads do need: the boundary must leave it possible."""
    name = f"{PROJECT}-{env}"
    db_arn = arn("rds", f"db:{name}")
    return [
        ("External Secrets reads the database secret", Request("secretsmanager:GetSecretValue", arn("secretsmanager", f"secret:rds!db-{env}-AbCdEf"), {"aws:ResourceTag/aws:rds:primaryDBInstanceArn": db_arn})),
        ("External Secrets reads an operator secret", Request("secretsmanager:GetSecretValue", arn("secretsmanager", f"secret:{name}/alertmanager/slack-AbCdEf"))),
        ("External Secrets decrypts the database secret", Request("kms:Decrypt", arn("kms", f"key/{env}-database"), {**env_tags(env), "kms:ViaService": f"secretsmanager.{region()}.amazonaws.com"})),
        ("the EBS CSI driver creates a volume", Request("ec2:CreateVolume", arn("ec2", "volume/*"))),
        ("the VPC CNI attaches an interface", Request("ec2:AttachNetworkInterface", arn("ec2", f"instance/i-{env}"), env_tags(env))),
        ("the autoscaler scales a node group", Request("autoscaling:SetDesiredCapacity", arn("autoscaling", "autoScalingGroup:x:autoScalingGroupName/eks-apps"), {"aws:ResourceTag/eks:cluster-name": name})),
        ("source-controller pulls the chart", Request("ecr:BatchGetImage", arn("ecr", "repository/charts/task-api"))),
        ("a node pulls the VPC CNI image from AWS's registry", Request("ecr:BatchGetImage", f"arn:{PARTITION}:ecr:{region()}:602401143452:repository/amazon-k8s-cni")),
        ("the Pod Identity agent exchanges a token", Request("eks-auth:AssumeRoleForPodIdentity", arn("eks", f"cluster/{name}"))),
        ("a node joins the cluster", Request("eks:DescribeCluster", arn("eks", f"cluster/{name}"))),
        ("the load balancer controller deletes its load balancer", Request("elasticloadbalancing:DeleteLoadBalancer", arn("elasticloadbalancing", "loadbalancer/app/k8s-x/1"), {"aws:ResourceTag/elbv2.k8s.aws/cluster": name})),
    ]


def cross_environment_workload_actions(env: str, actor_env: str) -> list[tuple[str, Request]]:
    name = f"{PROJECT}-{env}"
    db_arn = arn("rds", f"db:{name}")
    return [
        ("read the other database secret", Request("secretsmanager:GetSecretValue", arn("secretsmanager", f"secret:rds!db-{env}-AbCdEf"), {"aws:ResourceTag/aws:rds:primaryDBInstanceArn": db_arn})),
        ("read the other operator secret", Request("secretsmanager:GetSecretValue", arn("secretsmanager", f"secret:{name}/arc/github-app-AbCdEf"))),
        ("decrypt with the other database key", Request("kms:Decrypt", arn("kms", f"key/{env}-database"), {**env_tags(env), "kms:ViaService": f"secretsmanager.{region()}.amazonaws.com"})),
        ("terminate the other nodes", Request("ec2:TerminateInstances", arn("ec2", f"instance/i-{env}"), env_tags(env))),
        ("open the other security group", Request("ec2:AuthorizeSecurityGroupIngress", arn("ec2", f"security-group/sg-{env}-nodes"), env_tags(env))),
        ("scale the other node groups", Request("autoscaling:SetDesiredCapacity", arn("autoscaling", "autoScalingGroup:x:autoScalingGroupName/eks-apps"), {"aws:ResourceTag/eks:cluster-name": name})),
        ("delete the other load balancer", Request("elasticloadbalancing:DeleteLoadBalancer", arn("elasticloadbalancing", "loadbalancer/app/k8s-x/1"), {"aws:ResourceTag/elbv2.k8s.aws/cluster": name})),
        ("change the other cluster", Request("eks:DeleteCluster", arn("eks", f"cluster/{name}"))),
        ("exchange a Pod Identity token of the other cluster", Request("eks-auth:AssumeRoleForPodIdentity", arn("eks", f"cluster/{name}"))),
    ]


def envs() -> tuple[str, ...]:
    return tuple(sorted(global_values()["environments"]))


REPO = STACKS.parents[1]
