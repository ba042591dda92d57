"""Platform stage: Flux bootstrap and the cluster-vars ConfigMap the Flux tree substitutes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from opentofu_hcl import ENVS, STACKS, stack, tfvars  # noqa: E402

REPO = STACKS.parents[1]

CLUSTER_VARS_KEYS = {
    "cluster_name", "environment", "aws_region", "aws_account_id", "domain", "ecr_registry",
    "vpc_id", "vpc_cidr", "task_api_role_arn", "external_secrets_role_arn",
    "aws_lb_controller_role_arn", "db_secret_name", "acm_certificate_arn", "oidc_issuer_url",
    "oidc_audience", "rds_ca_bundle_base64",
}


@pytest.fixture(scope="module")
def platform():
    return stack("platform")


def _flux_instance(env: str) -> dict:
    import yaml

    return yaml.safe_load((REPO / "clusters" / env / "flux-system" / "flux-instance.yaml").read_text())


def test_flux_is_installed_by_the_operator_without_a_commit(platform):
    """No flux_bootstrap_git: it commits clusters/<env>/flux-system to main (rejected by
    pull-request-only branch protection) and stores its push-capable token in the cluster."""
    assert "flux_bootstrap_git" not in platform.resources
    providers = platform.terraform[0]["required_providers"][0]
    assert "flux" not in providers
    operator = platform.resource("helm_release", "flux_operator")
    instance = platform.resource("helm_release", "flux_instance")
    for release, chart in ((operator, "flux-operator"), (instance, "flux-instance")):
        assert release["chart"] == chart
        assert release["repository"] == "${local.flux_charts_repository}"
        assert release["version"] == "${local.flux_operator_chart_version}"
    assert platform.locals["flux_charts_repository"] == "oci://ghcr.io/controlplaneio-fluxcd/charts"
    assert re.fullmatch(r"\d+\.\d+\.\d+", platform.locals["flux_operator_chart_version"])
    assert instance["values"] == ["${yamlencode({instance = local.flux_instance.spec})}"]
    assert platform.locals["flux_instance_file"] == (
        "${path.module}/../../../clusters/${var.environment}/flux-system/flux-instance.yaml"
    )
    assert "${helm_release.flux_operator}" in instance["depends_on"]
    assert "${kubernetes_config_map_v1.cluster_vars}" in instance["depends_on"]
    assert "${kubernetes_secret_v1.flux_git}" in instance["depends_on"]


@pytest.mark.parametrize("env", ENVS)
def test_flux_instance_syncs_this_repository_over_https_with_the_read_only_app(platform, env):
    spec = _flux_instance(env)["spec"]
    repository = tfvars(env, "platform").get("github_repository", platform.variables["github_repository"]["default"])
    sync = spec["sync"]
    assert sync == {
        "kind": "GitRepository",
        "url": f"https://github.com/{repository}.git",
        "ref": "refs/heads/main",
        "path": f"clusters/{env}",
        "pullSecret": "flux-system",
        # The GitRepository the operator generates authenticates as the GitHub App.
        "provider": "github",
        "interval": "1m",
    }
    # The Secret OpenTofu writes is the one the sync reads, with GitHub App keys only.
    secret = platform.resource("kubernetes_secret_v1", "flux_git")
    assert secret["metadata"][0]["name"] == "${local.flux_instance.spec.sync.pullSecret}"
    assert set(secret["data_wo"]) == {"githubAppID", "githubAppInstallationID", "githubAppPrivateKey"}
    assert "data" not in secret, "a Secret's data attribute is stored in the state"
    assert secret["data_wo_revision"] == "${var.flux_github_app_key_revision}"


@pytest.mark.parametrize("env", ENVS)
def test_flux_instance_keeps_the_hardening_and_is_never_pruned(env):
    instance = _flux_instance(env)
    assert instance["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/prune"] == "disabled"
    spec = instance["spec"]
    assert spec["cluster"]["networkPolicy"] is True
    assert re.fullmatch(r"\d+\.\d+\.\d+", spec["distribution"]["version"]), "pin the Flux distribution"
    kustomize = next(p for p in spec["kustomize"]["patches"] if p["target"].get("name") == "kustomize-controller")
    assert "--no-remote-bases=true" in kustomize["patch"]
    assert "--feature-gates=StrictPostBuildSubstitutions=true" in kustomize["patch"]
    kustomization = yaml_load(REPO / "clusters" / env / "flux-system" / "kustomization.yaml")
    assert kustomization["resources"] == ["flux-instance.yaml"]


def yaml_load(path: Path):
    import yaml

    return yaml.safe_load(path.read_text())


def test_flux_instance_waits_for_every_pod_identity(platform):
    """A pod admitted before its association exists runs without AWS credentials until restarted."""
    identities = {
        name for name, call in platform.modules.items()
        if call["source"] == "terraform-aws-modules/eks-pod-identity/aws"
    }
    assert "flux_source_controller_identity" in identities
    depends_on = set(platform.resource("helm_release", "flux_instance")["depends_on"])
    assert {f"${{module.{name}}}" for name in identities} <= depends_on


def test_the_flux_notification_webhook_is_written_where_the_providers_read_it(platform):
    """Flux's failure alerts (infrastructure/notifications) must work on a platform that never
    comes up: the Slack Provider's Secret is written by this stage before Flux starts, under the
    name and key notification-controller reads (a Slack Provider takes the webhook from the
    `address` key of its secretRef), and never through the state."""
    providers = [
        doc
        for path in (REPO / "infrastructure" / "notifications").rglob("*.yaml")
        for doc in yaml_load_all(path)
        if doc and doc.get("kind") == "Provider"
    ]
    assert providers, "no Flux notification Provider in infrastructure/notifications"
    secret = platform.resource("kubernetes_secret_v1", "flux_notifications_slack")
    for provider in providers:
        assert provider["metadata"]["namespace"] == "flux-system"
        assert secret["metadata"][0]["name"] == provider["spec"]["secretRef"]["name"]
    assert secret["metadata"][0]["namespace"] == "${kubernetes_namespace_v1.flux_system.metadata[0].name}"
    assert set(secret["data_wo"]) == {"address"}
    assert "data" not in secret, "a Secret's data attribute is stored in the state"
    assert secret["data_wo"]["address"] == "${var.flux_notifications_slack_webhook}"
    webhook = platform.variables["flux_notifications_slack_webhook"]
    assert webhook["sensitive"] is True and webhook["ephemeral"] is True
    # Written before the operator installs Flux, so the first failure is already reported.
    depends_on = set(platform.resource("helm_release", "flux_instance")["depends_on"])
    assert "${kubernetes_secret_v1.flux_notifications_slack}" in depends_on


def test_the_rds_ca_bundle_reaches_the_file_the_database_url_names(platform):
    """verify-full needs the RDS CAs where sslrootcert= points: OpenTofu fetches the current
    global bundle into cluster-vars, Flux substitutes it into the ConfigMap the chart mounts,
    and the mount path plus key is the file DATABASE_URL names. Any link missing and the
    replicas refuse the database."""
    import yaml

    bundle = platform.data["http"]["rds_ca_bundle"]
    assert bundle["url"] == "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
    postcondition = bundle["lifecycle"][0]["postcondition"][0]["condition"]
    assert "status_code == 200" in postcondition and "BEGIN CERTIFICATE" in postcondition
    assert platform.locals["cluster_vars"]["rds_ca_bundle_base64"] == (
        "${base64encode(data.http.rds_ca_bundle.response_body)}"
    )

    base = REPO / "apps" / "base" / "task-api"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    configmaps = [
        doc
        for name in kustomization["resources"]
        for doc in yaml_load_all(base / name)
        if doc and doc.get("kind") == "ConfigMap"
    ]
    values = yaml.safe_load((base / "chart" / "values.yaml").read_text())["database"]["caBundle"]
    mounted = [cm for cm in configmaps if cm["metadata"]["name"] == values["configMapName"]]
    assert len(mounted) == 1, f"no ConfigMap {values['configMapName']} in apps/base/task-api"
    assert mounted[0]["metadata"]["namespace"] == "task-api"
    assert mounted[0]["binaryData"] == {values["key"]: "${rds_ca_bundle_base64}"}

    secret = yaml_load_all(base / "database-secret.yaml")[0]
    url = secret["spec"]["target"]["template"]["data"]["DATABASE_URL"]
    # The chart mounts the ConfigMap's key as ca.pem under mountPath.
    assert f"sslmode=verify-full&sslrootcert={values['mountPath']}/ca.pem" in url


def yaml_load_all(path: Path):
    import yaml

    return list(yaml.safe_load_all(path.read_text()))


def test_git_credential_is_sensitive_ephemeral_and_absent_from_plans(platform):
    key = platform.variables["flux_github_app_private_key"]
    assert key["sensitive"] is True
    assert key["ephemeral"] is True
    assert "flux_git_token" not in platform.variables


def test_pod_identity_roles_trust_only_this_account_and_cluster(platform):
    conditions = platform.locals["workload_identity_defaults"]["trust_policy_conditions"]
    by_key = {c["variable"]: (c["test"], c["values"]) for c in conditions}
    assert by_key["aws:SourceAccount"] == ("StringEquals", ["${data.aws_caller_identity.current.account_id}"])
    assert by_key["aws:SourceArn"] == ("ArnEquals", ["${data.aws_eks_cluster.this.arn}"])
    for name, call in platform.modules.items():
        if call["source"] == "terraform-aws-modules/eks-pod-identity/aws":
            assert call.get("trust_policy_conditions") == "${local.workload_identity_defaults.trust_policy_conditions}", name
    ebs = stack("cluster").module("ebs_csi_pod_identity")
    variables = {c["variable"] for c in ebs["trust_policy_conditions"]}
    assert variables == {"aws:SourceAccount", "aws:SourceArn"}


def test_cluster_vars_configmap_has_every_key(platform):
    cm = platform.resource("kubernetes_config_map_v1", "cluster_vars")
    meta = cm["metadata"][0]
    assert meta["name"] == "cluster-vars"
    assert meta["namespace"] == "${kubernetes_namespace_v1.flux_system.metadata[0].name}"
    ns = platform.resource("kubernetes_namespace_v1", "flux_system")
    assert ns["metadata"][0]["name"] == "flux-system"
    assert cm["data"] == "${local.cluster_vars}"
    keys = set(platform.locals["cluster_vars"])
    assert CLUSTER_VARS_KEYS <= keys, sorted(CLUSTER_VARS_KEYS - keys)


def test_cluster_vars_values_come_from_the_right_places(platform):
    values = platform.locals["cluster_vars"]
    assert values["environment"] == "${var.environment}"
    assert values["db_secret_name"] == "${local.database.db_master_secret_arn}"
    assert values["task_api_role_arn"] == "${module.task_api_identity.iam_role_arn}"
    assert values["external_secrets_role_arn"] == "${module.external_secrets_identity.iam_role_arn}"
    assert values["aws_lb_controller_role_arn"] == "${module.aws_lb_controller_identity.iam_role_arn}"
    assert values["acm_certificate_arn"] == "${aws_acm_certificate_validation.environment.certificate_arn}"


def _statements(platform, document: str) -> dict[str, dict]:
    doc = platform.data["aws_iam_policy_document"][document]
    return {st["sid"]: st for st in doc["statement"]}


def _actions(statements: dict[str, dict]) -> set[str]:
    return {a for st in statements.values() for a in st["actions"]}


def test_external_secrets_policy_is_ours_and_read_only(platform):
    eso = platform.module("external_secrets_identity")
    # The module's built-in External Secrets policy grants ListSecrets/BatchGetSecretValue on "*".
    assert not eso.get("attach_external_secrets_policy", False)
    assert eso["attach_custom_policy"] is True
    assert eso["source_policy_documents"] == ["${data.aws_iam_policy_document.external_secrets.json}"]
    statements = _statements(platform, "external_secrets")
    assert _actions(statements) == {
        "secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "kms:Decrypt",
    }
    read = statements["ReadConsumedSecrets"]
    assert read["resources"] == "${concat([local.database.db_master_secret_arn], local.operator_secret_arns)}"
    decrypt = statements["DecryptDatabaseSecret"]
    assert decrypt["resources"] == ["${local.database.db_kms_key_arn}"]
    for st in statements.values():
        assert st.get("effect", "Allow") == "Allow"
        assert "*" not in st["resources"]


def test_operator_secret_arns_are_exact_names_below_the_cluster(platform):
    arns = platform.locals["operator_secret_arns"]
    match = re.fullmatch(r'\$\{\[for (\w+) in local\.operator_secrets\[var\.environment\] : "(.*)"\]\}', arns)
    assert match, arns
    var, template = match.groups()
    # -?????? matches exactly the six-character suffix Secrets Manager appends: no sibling
    # secret whose name merely starts the same way, and nothing outside <cluster_name>/.
    assert template == (
        "arn:${data.aws_partition.current.partition}:secretsmanager:${var.aws_region}:"
        "${data.aws_caller_identity.current.account_id}:secret:${local.cluster.cluster_name}/"
        f"${{{var}}}-??????"
    )


def _external_secret_keys(env: str) -> set[str]:
    """remoteRef keys of the ExternalSecrets that infrastructure/configs/<env> renders."""
    import shutil
    import subprocess

    import yaml

    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl not on PATH (source .ci/tools.sh)"
    rendered = subprocess.run(
        [kubectl, "kustomize", str(REPO / "infrastructure" / "configs" / env)],
        check=True, capture_output=True, text=True,
    ).stdout
    keys = set()
    # BaseLoader: Alertmanager matchers such as `matchType: =` are not plain YAML 1.1 scalars.
    for doc in yaml.load_all(rendered, Loader=yaml.BaseLoader):
        if doc and doc.get("kind") == "ExternalSecret":
            for item in doc["spec"].get("data", []):
                keys.add(item["remoteRef"]["key"])
            assert "dataFrom" not in doc["spec"], "dataFrom needs ListSecrets; grant it deliberately"
    return keys


@pytest.mark.parametrize("env", ENVS)
def test_external_secrets_may_read_exactly_what_the_flux_tree_references(platform, env):
    granted = {f"${{cluster_name}}/{name}" for name in platform.locals["operator_secrets"][env]}
    assert granted == _external_secret_keys(env)


def test_workload_identities_bound_to_their_service_accounts(platform):
    expected = {
        "aws_lb_controller_identity": ("kube-system", "aws-load-balancer-controller"),
        "external_secrets_identity": ("external-secrets", "external-secrets"),
        "cluster_autoscaler_identity": ("kube-system", "cluster-autoscaler"),
        "task_api_identity": ("task-api", "task-api"),
    }
    for name, (namespace, sa) in expected.items():
        call = platform.module(name)
        assert call["permissions_boundary_arn"] == "${local.workload_identity_defaults.permissions_boundary_arn}"
        (assoc,) = call["associations"].values()
        assert (assoc["namespace"], assoc["service_account"]) == (namespace, sa), name
        assert assoc["cluster_name"] == "${local.cluster.cluster_name}"
    autoscaler = platform.module("cluster_autoscaler_identity")
    assert autoscaler["cluster_autoscaler_cluster_names"] == ["${local.cluster.cluster_name}"]


def _global_ecr_repositories() -> set[str]:
    from opentofu_hcl import load_file

    doc = load_file(STACKS / "global" / "ecr.tf")
    (local,) = [b for b in doc["locals"] if "ecr_repositories" in b]
    match = re.fullmatch(r"\$\{toset\(\[(.*)\]\)\}", local["ecr_repositories"])
    assert match, local["ecr_repositories"]
    return {name.strip().strip('"') for name in match[1].split(",")}


def test_flux_source_controller_may_pull_only_the_task_api_repositories(platform):
    """HelmRepository task-api-charts (provider: aws) authenticates as source-controller."""
    flux = platform.module("flux_source_controller_identity")
    (assoc,) = flux["associations"].values()
    assert (assoc["namespace"], assoc["service_account"]) == ("flux-system", "source-controller")
    assert assoc["cluster_name"] == "${local.cluster.cluster_name}"
    assert flux["permissions_boundary_arn"] == "${local.workload_identity_defaults.permissions_boundary_arn}"
    assert flux["attach_custom_policy"] is True
    assert flux["source_policy_documents"] == ["${data.aws_iam_policy_document.flux_source_controller.json}"]

    statements = _statements(platform, "flux_source_controller")
    for st in statements.values():
        assert st.get("effect", "Allow") == "Allow"
        assert all(a.startswith("ecr:") for a in st["actions"]), st["actions"]
        assert not any("Put" in a or "Upload" in a or "Delete" in a or "*" in a for a in st["actions"])
    unscoped = [st for st in statements.values() if st["resources"] == ["*"]]
    assert [st["actions"] for st in unscoped] == [["ecr:GetAuthorizationToken"]]
    pull = [st for st in statements.values() if st["resources"] != ["*"]]
    assert len(pull) == 1
    assert {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"} <= set(pull[0]["actions"])
    repos = {"charts/task-api", "task-api"}
    assert repos <= _global_ecr_repositories()
    assert sorted(pull[0]["resources"]) == sorted(
        f'${{local.global.ecr_repository_arns["{r}"]}}' for r in repos
    )
    global_outputs = stack("global").outputs
    assert "ecr_repository_arns" in global_outputs
    assert global_outputs["ecr_repository_arns"]["value"] == (
        "${{for name, r in aws_ecr_repository.this : name => r.arn}}"
    )


@pytest.mark.parametrize("env", ENVS)
def test_application_oidc_settings(env):
    values = tfvars(env, "platform")
    assert values["oidc_issuer_url"].startswith("https://")
    assert values["oidc_audience"]
    assert values["domain"].endswith(values["route53_zone_name"])


@pytest.mark.parametrize("env", ENVS)
def test_cluster_vars_match_what_the_flux_tree_substitutes(platform, env):
    """The Flux tree's offline checks render with a sample cluster-vars; both sides must agree."""
    import yaml

    fixture = Path(__file__).resolve().parents[2] / "clusters" / "tests" / "fixtures" / f"cluster-vars-{env}.yaml"
    if not fixture.is_file():
        pytest.skip(f"{fixture.name} not present")
    expected = set(yaml.safe_load(fixture.read_text())["data"])
    assert set(platform.locals["cluster_vars"]) == expected
