# AWS identities of in-cluster workloads, through EKS Pod Identity. Namespaces and service
# account names must match what the Flux tree installs (infrastructure/ and apps/).
locals {
  workload_identity_defaults = {
    use_name_prefix          = false
    permissions_boundary_arn = local.permissions_boundary_arn
    tags                     = local.tags
    # pods.eks.amazonaws.com may assume a role only for this account and this cluster: a
    # Pod Identity association of another cluster (another environment) cannot name it.
    trust_policy_conditions = [
      {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [data.aws_caller_identity.current.account_id]
      },
      {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [data.aws_eks_cluster.this.arn]
      },
    ]
  }
}

module "aws_lb_controller_identity" {
  #checkov:skip=CKV_TF_1: registry module pinned to an exact version; registry sources cannot take a commit hash
  source  = "terraform-aws-modules/eks-pod-identity/aws"
  version = "2.8.1"

  name                            = "${local.name}-aws-load-balancer-controller"
  use_name_prefix                 = local.workload_identity_defaults.use_name_prefix
  permissions_boundary_arn        = local.workload_identity_defaults.permissions_boundary_arn
  trust_policy_conditions         = local.workload_identity_defaults.trust_policy_conditions
  attach_aws_lb_controller_policy = true
  aws_lb_controller_policy_name   = "${local.name}-aws-load-balancer-controller"

  associations = {
    controller = {
      cluster_name    = local.cluster.cluster_name
      namespace       = "kube-system"
      service_account = "aws-load-balancer-controller"
    }
  }

  tags = local.workload_identity_defaults.tags
}

# Secrets the Flux tree reads through the ClusterSecretStore, besides the database secret
# (remoteRef keys in infrastructure/configs). They are created by hand, outside OpenTofu, so
# that their values never enter the state; see README.md. Each name is matched exactly: the
# trailing -?????? is the random suffix Secrets Manager appends to every secret ARN.
locals {
  # Per environment, the names below <cluster_name>/ that infrastructure/configs/<env> renders.
  operator_secrets = {
    dev     = ["arc/github-app", "alertmanager/slack"]
    staging = ["arc/github-app", "alertmanager/slack"]
    prod    = ["arc/github-app", "alertmanager/slack", "alertmanager/pagerduty"]
  }
  operator_secret_arns = [
    for name in local.operator_secrets[var.environment] :
    "arn:${data.aws_partition.current.partition}:secretsmanager:${var.aws_region}:${data.aws_caller_identity.current.account_id}:secret:${local.cluster.cluster_name}/${name}-??????"
  ]
}

# Read-only, and only the secrets this environment's workloads consume: no ListSecrets, no
# BatchGetSecretValue, nothing on "*".
data "aws_iam_policy_document" "external_secrets" {
  statement {
    sid       = "ReadConsumedSecrets"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = concat([local.database.db_master_secret_arn], local.operator_secret_arns)
  }

  # The database secret is encrypted with the database stack's key; the operator secrets use
  # the AWS-managed aws/secretsmanager key, which needs no grant here.
  statement {
    sid       = "DecryptDatabaseSecret"
    actions   = ["kms:Decrypt"]
    resources = [local.database.db_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.aws_region}.amazonaws.com"]
    }
  }
}

module "external_secrets_identity" {
  #checkov:skip=CKV_TF_1: registry module pinned to an exact version; registry sources cannot take a commit hash
  source  = "terraform-aws-modules/eks-pod-identity/aws"
  version = "2.8.1"

  name                     = "${local.name}-external-secrets"
  use_name_prefix          = local.workload_identity_defaults.use_name_prefix
  permissions_boundary_arn = local.workload_identity_defaults.permissions_boundary_arn
  trust_policy_conditions  = local.workload_identity_defaults.trust_policy_conditions

  # The module's own External Secrets policy adds ListSecrets and BatchGetSecretValue on "*";
  # this one grants only what the ExternalSecrets use (remoteRef by name, no find).
  attach_custom_policy      = true
  custom_policy_description = "External Secrets: read this environment's consumed secrets"
  source_policy_documents   = [data.aws_iam_policy_document.external_secrets.json]

  associations = {
    controller = {
      cluster_name    = local.cluster.cluster_name
      namespace       = "external-secrets"
      service_account = "external-secrets"
    }
  }

  tags = local.workload_identity_defaults.tags
}

module "cluster_autoscaler_identity" {
  #checkov:skip=CKV_TF_1: registry module pinned to an exact version; registry sources cannot take a commit hash
  source  = "terraform-aws-modules/eks-pod-identity/aws"
  version = "2.8.1"

  name                             = "${local.name}-cluster-autoscaler"
  use_name_prefix                  = local.workload_identity_defaults.use_name_prefix
  permissions_boundary_arn         = local.workload_identity_defaults.permissions_boundary_arn
  trust_policy_conditions          = local.workload_identity_defaults.trust_policy_conditions
  attach_cluster_autoscaler_policy = true
  cluster_autoscaler_policy_name   = "${local.name}-cluster-autoscaler"
  cluster_autoscaler_cluster_names = [local.cluster.cluster_name]

  associations = {
    controller = {
      cluster_name    = local.cluster.cluster_name
      namespace       = "kube-system"
      service_account = "cluster-autoscaler"
    }
  }

  tags = local.workload_identity_defaults.tags
}

# The Task API talks to no AWS API today (its database password arrives through External
# Secrets); the role gives it an identity to grant to later, without touching node roles.
module "task_api_identity" {
  #checkov:skip=CKV_TF_1: registry module pinned to an exact version; registry sources cannot take a commit hash
  source  = "terraform-aws-modules/eks-pod-identity/aws"
  version = "2.8.1"

  name                     = "${local.name}-task-api"
  use_name_prefix          = local.workload_identity_defaults.use_name_prefix
  permissions_boundary_arn = local.workload_identity_defaults.permissions_boundary_arn
  trust_policy_conditions  = local.workload_identity_defaults.trust_policy_conditions

  associations = {
    task-api = {
      cluster_name    = local.cluster.cluster_name
      namespace       = "task-api"
      service_account = "task-api"
    }
  }

  tags = local.workload_identity_defaults.tags
}

# Flux's source-controller pulls the Task API chart from ECR (HelmRepository provider: aws);
# read-only, and only the project's two repositories.
data "aws_iam_policy_document" "flux_source_controller" {
  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PullChartAndImage"
    actions = [
      "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
      "ecr:DescribeImages", "ecr:ListImages",
    ]
    resources = [
      local.global.ecr_repository_arns["charts/task-api"],
      local.global.ecr_repository_arns["task-api"],
    ]
  }
}

module "flux_source_controller_identity" {
  #checkov:skip=CKV_TF_1: registry module pinned to an exact version; registry sources cannot take a commit hash
  source  = "terraform-aws-modules/eks-pod-identity/aws"
  version = "2.8.1"

  name                     = "${local.name}-flux-source-controller"
  use_name_prefix          = local.workload_identity_defaults.use_name_prefix
  permissions_boundary_arn = local.workload_identity_defaults.permissions_boundary_arn
  trust_policy_conditions  = local.workload_identity_defaults.trust_policy_conditions

  attach_custom_policy      = true
  custom_policy_description = "Flux source-controller: pull the Task API chart and image from ECR"
  source_policy_documents   = [data.aws_iam_policy_document.flux_source_controller.json]

  associations = {
    source-controller = {
      cluster_name    = local.cluster.cluster_name
      namespace       = "flux-system"
      service_account = "source-controller"
    }
  }

  tags = local.workload_identity_defaults.tags
}
