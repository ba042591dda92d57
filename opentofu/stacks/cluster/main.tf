data "terraform_remote_state" "network" {
  backend = "s3"
  config = {
    bucket = var.state_bucket
    key    = "${var.environment}/network/terraform.tfstate"
    region = var.aws_region
  }
}

locals {
  network   = data.terraform_remote_state.network.outputs
  partition = data.aws_partition.current.partition

  ci_access_entries = {
    ci-apply = {
      principal_arn = data.terraform_remote_state.global.outputs.apply_role_arns[var.environment]
      policy_associations = {
        admin = {
          policy_arn   = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
          access_scope = { type = "cluster" }
        }
      }
    }
    # The plan job refreshes what the platform stage manages in the cluster (Helm release
    # records, the flux-system namespace, ConfigMap and Git credential, RBAC, Flux objects):
    # the group is bound read-only by the platform stage (stacks/platform/rbac.tf), because no
    # AWS access policy covers CRDs and Flux's API groups without also granting writes.
    ci-plan = {
      principal_arn     = data.terraform_remote_state.global.outputs.plan_role_arns[var.environment]
      kubernetes_groups = [local.plan_readers_group]
      policy_associations = {
        view = {
          policy_arn   = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
          access_scope = { type = "cluster" }
        }
      }
    }
  }

  # Kubernetes group of the plan role's access entry; stacks/platform binds it (same name).
  plan_readers_group = "${var.project}:plan-readers"

  admin_access_entries = {
    for i, arn in var.cluster_admin_role_arns : "admin-${i}" => {
      principal_arn = arn
      policy_associations = {
        admin = {
          policy_arn   = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
          access_scope = { type = "cluster" }
        }
      }
    }
  }

  # Pods get AWS credentials from Pod Identity, never from the node's instance profile.
  node_metadata_options = {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  block_devices = {
    for name, pool in var.node_pools : name => {
      xvda = {
        device_name = "/dev/xvda"
        ebs = {
          volume_size           = pool.disk_size_gib
          volume_type           = "gp3"
          encrypted             = true
          delete_on_termination = true
        }
      }
    }
  }
}

# Attached to the apps nodes only: the database admits this group and nothing else.
resource "aws_security_group" "apps_nodes" {
  #checkov:skip=CKV2_AWS_5: attached to the apps node group through the EKS module (vpc_security_group_ids)
  name        = "${local.name}-apps-nodes"
  description = "Identity of the apps node group; the database allows 5432 from it"
  vpc_id      = local.network.vpc_id

  tags = { Name = "${local.name}-apps-nodes" }
}

module "eks" {
  #checkov:skip=CKV_TF_1: registry module pinned to an exact version; registry sources cannot take a commit hash
  source  = "terraform-aws-modules/eks/aws"
  version = "21.19.0"

  name               = local.name
  kubernetes_version = var.kubernetes_version

  vpc_id                   = local.network.vpc_id
  subnet_ids               = local.network.private_subnet_ids
  control_plane_subnet_ids = local.network.private_subnet_ids

  # Private endpoint for the nodes; the public one admits only the named ranges (the OpenTofu
  # runners, operators), docs/decisions/0080.
  endpoint_private_access      = true
  endpoint_public_access       = true
  endpoint_public_access_cidrs = values(var.endpoint_public_access_sources)

  authentication_mode                      = "API"
  enable_cluster_creator_admin_permissions = false
  access_entries                           = merge(local.ci_access_entries, local.admin_access_entries)

  # Envelope encryption of Secrets with a customer-managed, rotated key.
  create_kms_key          = true
  enable_kms_key_rotation = true
  encryption_config = {
    resources = ["secrets"]
  }

  enabled_log_types                      = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  cloudwatch_log_group_retention_in_days = var.log_retention_days
  cloudwatch_log_group_kms_key_id        = local.network.logs_kms_key_arn

  deletion_protection = var.environment == "prod"

  iam_role_name                     = "${local.name}-cluster"
  iam_role_use_name_prefix          = false
  iam_role_permissions_boundary     = local.permissions_boundary_arn
  encryption_policy_name            = "${local.name}-cluster-encryption"
  encryption_policy_use_name_prefix = false
  # (The node groups' roles carry the boundary through each group's
  # iam_role_permissions_boundary; the module's node_iam_role_permissions_boundary is only for
  # the EKS Auto Mode node role, which this cluster does not use.)

  # Every workload identity is an EKS Pod Identity association: no IRSA OIDC provider.
  enable_irsa = false

  # Addon builds pinned per Kubernetes minor (addons.tf), so every environment on one minor runs
  # the same builds and a change is a reviewed pull request.
  addons = {
    vpc-cni = {
      before_compute       = true
      addon_version        = local.addon_versions["vpc-cni"]
      most_recent          = false
      configuration_values = jsonencode(local.vpc_cni_configuration)
    }
    eks-pod-identity-agent = {
      before_compute = true
      addon_version  = local.addon_versions["eks-pod-identity-agent"]
      most_recent    = false
    }
    kube-proxy = {
      addon_version = local.addon_versions["kube-proxy"]
      most_recent   = false
    }
    coredns = {
      addon_version = local.addon_versions["coredns"]
      most_recent   = false
    }
    aws-ebs-csi-driver = {
      addon_version = local.addon_versions["aws-ebs-csi-driver"]
      most_recent   = false
      pod_identity_association = [{
        role_arn        = module.ebs_csi_pod_identity.iam_role_arn
        service_account = "ebs-csi-controller-sa"
      }]
    }
  }

  eks_managed_node_groups = {
    system = {
      name                          = "${local.name}-system"
      use_name_prefix               = false
      ami_type                      = "AL2023_x86_64_STANDARD"
      capacity_type                 = "ON_DEMAND"
      instance_types                = var.node_pools.system.instance_types
      min_size                      = var.node_pools.system.min_size
      max_size                      = var.node_pools.system.max_size
      desired_size                  = var.node_pools.system.desired_size
      block_device_mappings         = local.block_devices.system
      metadata_options              = local.node_metadata_options
      update_config                 = { max_unavailable_percentage = 33 }
      iam_role_name                 = "${local.name}-node-system"
      iam_role_use_name_prefix      = false
      iam_role_permissions_boundary = local.permissions_boundary_arn
      labels                        = { node-pool = "system" }
      # Only controllers that tolerate it (Flux, CoreDNS, autoscaler, ...) land here.
      taints = {
        critical = { key = "CriticalAddonsOnly", value = "true", effect = "NO_SCHEDULE" }
      }
    }

    apps = {
      name                          = "${local.name}-apps"
      use_name_prefix               = false
      ami_type                      = "AL2023_x86_64_STANDARD"
      capacity_type                 = "ON_DEMAND"
      instance_types                = var.node_pools.apps.instance_types
      min_size                      = var.node_pools.apps.min_size
      max_size                      = var.node_pools.apps.max_size
      desired_size                  = var.node_pools.apps.desired_size
      block_device_mappings         = local.block_devices.apps
      metadata_options              = local.node_metadata_options
      update_config                 = { max_unavailable_percentage = 33 }
      iam_role_name                 = "${local.name}-node-apps"
      iam_role_use_name_prefix      = false
      iam_role_permissions_boundary = local.permissions_boundary_arn
      labels                        = { node-pool = "apps" }
      vpc_security_group_ids        = [aws_security_group.apps_nodes.id]
    }

    # CI runners: interruptible, so spot; tainted so that only runner pods land here;
    # from zero when no job waits, capped by max_size (the cost ceiling).
    runners = {
      name                          = "${local.name}-runners"
      use_name_prefix               = false
      ami_type                      = "AL2023_x86_64_STANDARD"
      capacity_type                 = "SPOT"
      instance_types                = var.node_pools.runners.instance_types
      min_size                      = var.node_pools.runners.min_size
      max_size                      = var.node_pools.runners.max_size
      desired_size                  = var.node_pools.runners.desired_size
      block_device_mappings         = local.block_devices.runners
      metadata_options              = local.node_metadata_options
      update_config                 = { max_unavailable_percentage = 33 }
      iam_role_name                 = "${local.name}-node-runners"
      iam_role_use_name_prefix      = false
      iam_role_permissions_boundary = local.permissions_boundary_arn
      labels                        = { node-pool = "runners" }
      taints = {
        runners = { key = "runners", value = "true", effect = "NO_SCHEDULE" }
      }
    }
  }

  tags = local.tags
}

module "ebs_csi_pod_identity" {
  #checkov:skip=CKV_TF_1: registry module pinned to an exact version; registry sources cannot take a commit hash
  source  = "terraform-aws-modules/eks-pod-identity/aws"
  version = "2.8.1"

  name                      = "${local.name}-ebs-csi"
  use_name_prefix           = false
  permissions_boundary_arn  = local.permissions_boundary_arn
  attach_aws_ebs_csi_policy = true
  # Only this account's Pod Identity, for this cluster (the ARN is built from the name so that
  # the role does not wait for the cluster).
  trust_policy_conditions = [
    { test = "StringEquals", variable = "aws:SourceAccount", values = [data.aws_caller_identity.current.account_id] },
    { test = "ArnEquals", variable = "aws:SourceArn", values = ["arn:${local.partition}:eks:${var.aws_region}:${data.aws_caller_identity.current.account_id}:cluster/${local.name}"] },
  ]
  aws_ebs_csi_policy_name = "${local.name}-ebs-csi"

  tags = local.tags
}
