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
    ci-plan = {
      principal_arn = data.terraform_remote_state.global.outputs.plan_role_arns[var.environment]
      policy_associations = {
        view = {
          policy_arn   = "arn:${local.partition}:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
          access_scope = { type = "cluster" }
        }
      }
    }
  }

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

  endpoint_private_access      = true
  endpoint_public_access       = var.endpoint_public_access
  endpoint_public_access_cidrs = var.endpoint_public_access_cidrs

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

  iam_role_name                      = "${local.name}-cluster"
  iam_role_use_name_prefix           = false
  iam_role_permissions_boundary      = local.permissions_boundary_arn
  encryption_policy_name             = "${local.name}-cluster-encryption"
  encryption_policy_use_name_prefix  = false
  node_iam_role_permissions_boundary = local.permissions_boundary_arn

  enable_irsa = true

  # Addons follow the latest build for the cluster's minor version at creation; upgrades of
  # kubernetes_version move them forward together (docs/decisions/0052).
  addons = {
    vpc-cni                = { before_compute = true }
    eks-pod-identity-agent = { before_compute = true }
    kube-proxy             = {}
    coredns                = {}
    aws-ebs-csi-driver = {
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
  aws_ebs_csi_policy_name   = "${local.name}-ebs-csi"

  tags = local.tags
}
