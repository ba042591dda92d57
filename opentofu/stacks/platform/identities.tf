# AWS identities of in-cluster workloads, through EKS Pod Identity. Namespaces and service
# account names must match what the Flux tree installs (infrastructure/ and apps/).
locals {
  workload_identity_defaults = {
    use_name_prefix          = false
    permissions_boundary_arn = local.permissions_boundary_arn
    tags                     = local.tags
  }
}

module "aws_lb_controller_identity" {
  #checkov:skip=CKV_TF_1: registry module pinned to an exact version; registry sources cannot take a commit hash
  source  = "terraform-aws-modules/eks-pod-identity/aws"
  version = "2.8.1"

  name                            = "${local.name}-aws-load-balancer-controller"
  use_name_prefix                 = local.workload_identity_defaults.use_name_prefix
  permissions_boundary_arn        = local.workload_identity_defaults.permissions_boundary_arn
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

module "external_secrets_identity" {
  #checkov:skip=CKV_TF_1: registry module pinned to an exact version; registry sources cannot take a commit hash
  source  = "terraform-aws-modules/eks-pod-identity/aws"
  version = "2.8.1"

  name                     = "${local.name}-external-secrets"
  use_name_prefix          = local.workload_identity_defaults.use_name_prefix
  permissions_boundary_arn = local.workload_identity_defaults.permissions_boundary_arn

  # Read-only, and only the secrets this environment's workloads consume.
  attach_external_secrets_policy        = true
  external_secrets_policy_name          = "${local.name}-external-secrets"
  external_secrets_secrets_manager_arns = [local.database.db_master_secret_arn]
  external_secrets_kms_key_arns         = [local.database.db_kms_key_arn]
  external_secrets_ssm_parameter_arns   = []
  external_secrets_create_permission    = false

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

  associations = {
    task-api = {
      cluster_name    = local.cluster.cluster_name
      namespace       = "task-api"
      service_account = "task-api"
    }
  }

  tags = local.workload_identity_defaults.tags
}
