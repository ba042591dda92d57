# Per environment: a read-only plan role (GitHub environment <env>-plan, no reviewers) and an
# apply role (GitHub environment <env>, protected). Neither can assume the other.
locals {
  state_bucket_arn = "arn:${local.partition}:s3:::${var.state_bucket}"
  region_account   = "${var.aws_region}:${local.account_id}"
}

data "aws_iam_policy_document" "state_read" {
  for_each = var.environments

  statement {
    sid       = "ListOwnState"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${each.key}/*", "global/*"]
    }
  }

  statement {
    sid       = "ReadOwnState"
    actions   = ["s3:GetObject"]
    resources = ["${local.state_bucket_arn}/${each.key}/*"]
  }

  # Environment stacks read the permissions boundary ARN from the global stack's outputs.
  statement {
    sid       = "ReadGlobalOutputs"
    actions   = ["s3:GetObject"]
    resources = ["${local.state_bucket_arn}/global/terraform.tfstate"]
  }

  # S3-native locking writes <key>.tflock next to the state, also during plan.
  statement {
    sid       = "LockOwnState"
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.state_bucket_arn}/${each.key}/*.tflock"]
  }

  statement {
    sid       = "StateKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [var.state_kms_key_arn]
  }
}

data "aws_iam_policy_document" "plan_guard" {
  for_each = var.environments

  # ReadOnlyAccess includes a few data-plane reads a plan never needs. (Public SSM parameters
  # stay readable: the EKS module looks up AMI releases there.)
  statement {
    sid    = "NoSecretOrDataReads"
    effect = "Deny"
    actions = [
      "secretsmanager:GetSecretValue",
      "secretsmanager:BatchGetSecretValue",
      "kms:Decrypt",
      "dynamodb:GetItem",
      "dynamodb:Query",
      "dynamodb:Scan",
    ]
    not_resources = [var.state_kms_key_arn]
  }

  # ReadOnlyAccess reads every S3 object; a plan reads its own environment's state only.
  statement {
    sid           = "NoOtherObjects"
    effect        = "Deny"
    actions       = ["s3:GetObject", "s3:GetObjectVersion"]
    not_resources = ["${local.state_bucket_arn}/${each.key}/*", "${local.state_bucket_arn}/global/terraform.tfstate"]
  }
}

module "plan_role" {
  source   = "../../modules/github-oidc-role"
  for_each = var.environments

  name                = "${var.project}-github-${each.key}-plan"
  oidc_provider_arn   = local.oidc_provider_arn
  github_repository   = var.github_repository
  github_environment  = "${each.key}-plan"
  managed_policy_arns = ["arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"]
  inline_policies = {
    state = data.aws_iam_policy_document.state_read[each.key].json
    guard = data.aws_iam_policy_document.plan_guard[each.key].json
  }
}

# Every role an environment's stacks create must carry this boundary, so that the apply role
# cannot mint a role more powerful than itself (no IAM writes, no state tampering).
data "aws_iam_policy_document" "workload_boundary" {
  for_each = var.environments

  #checkov:skip=CKV_AWS_356: a permissions boundary only caps; the identity policies scope resources
  #checkov:skip=CKV_AWS_111: a permissions boundary only caps; the identity policies scope writes
  #checkov:skip=CKV_AWS_109: a permissions boundary only caps; the identity policies scope writes
  #checkov:skip=CKV_AWS_110: a permissions boundary only caps; it denies every IAM write itself
  #checkov:skip=CKV_AWS_108: a permissions boundary only caps; the identity policies scope reads
  #checkov:skip=CKV_AWS_107: a permissions boundary only caps; the identity policies scope reads
  #checkov:skip=CKV_AWS_49: a permissions boundary only caps; "*" here grants nothing
  #checkov:skip=CKV_AWS_1: a permissions boundary only caps; "*" here grants nothing
  statement {
    sid       = "CapOnly"
    actions   = ["*"]
    resources = ["*"]
  }

  statement {
    sid    = "NoPrivilegeEscalation"
    effect = "Deny"
    # iam:CreateServiceLinkedRole stays possible: the cluster and the load balancer controller
    # create the ELB service-linked role on first use.
    actions = [
      "iam:Add*", "iam:Attach*", "iam:CreateRole", "iam:CreatePolicy*", "iam:CreateUser",
      "iam:CreateGroup", "iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:CreateInstanceProfile",
      "iam:CreateOpenIDConnectProvider", "iam:CreateSAMLProvider", "iam:CreateServiceSpecificCredential",
      "iam:Delete*", "iam:Detach*", "iam:Pass*", "iam:Put*", "iam:Remove*", "iam:Set*",
      "iam:Update*", "iam:Upload*", "organizations:*", "account:*",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "NoStateAccess"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [local.state_bucket_arn, "${local.state_bucket_arn}/*"]
  }
}

#trivy:ignore:AVD-AWS-0057 a permissions boundary grants nothing by itself; it caps roles created by CI
resource "aws_iam_policy" "workload_boundary" {
  for_each = var.environments

  #checkov:skip=CKV_AWS_286: boundary caps permissions, it does not grant them
  #checkov:skip=CKV_AWS_287: boundary caps permissions, it does not grant them
  #checkov:skip=CKV_AWS_288: boundary caps permissions, it does not grant them
  #checkov:skip=CKV_AWS_289: boundary caps permissions, it does not grant them
  #checkov:skip=CKV_AWS_290: boundary caps permissions, it does not grant them
  #checkov:skip=CKV_AWS_355: boundary caps permissions, it does not grant them
  #checkov:skip=CKV_AWS_62: boundary caps permissions, it does not grant them
  #checkov:skip=CKV_AWS_63: boundary caps permissions, it does not grant them
  name        = "${var.project}-${each.key}-workload-boundary"
  description = "Permissions boundary for roles created by the ${each.key} stacks"
  policy      = data.aws_iam_policy_document.workload_boundary[each.key].json
}

#trivy:ignore:AVD-AWS-0342 PassRole is limited to the environment's own roles and to the services that run them
data "aws_iam_policy_document" "apply" {
  for_each = var.environments

  #checkov:skip=CKV_AWS_356: ec2/autoscaling/logs/kms/acm resources are created by this role and have no ARN beforehand; pinned to the region

  # EC2 (VPC, subnets, endpoints, security groups, launch templates) has no name-based ARNs
  # worth scoping on; the region pins it, and every other service below is scoped by name.
  statement {
    sid = "RegionalNetworkAndCompute"
    actions = [
      "ec2:*", "autoscaling:*", "elasticloadbalancing:Describe*",
      "logs:*", "kms:*", "acm:*", "route53:Get*", "route53:List*", "route53:ChangeResourceRecordSets",
      "secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy",
      "ssm:GetParameter", "ssm:GetParameters",
      "pi:*", "cloudwatch:*",
    ]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [var.aws_region, "us-east-1"]
    }
  }

  statement {
    sid     = "OwnCluster"
    actions = ["eks:*"]
    resources = [
      "arn:${local.partition}:eks:${local.region_account}:cluster/${var.project}-${each.key}",
      "arn:${local.partition}:eks:${local.region_account}:*/${var.project}-${each.key}/*",
    ]
  }

  statement {
    sid       = "EksReadAndVersions"
    actions   = ["eks:Describe*", "eks:List*"]
    resources = ["*"]
  }

  statement {
    sid       = "OwnDatabase"
    actions   = ["rds:*"]
    resources = ["arn:${local.partition}:rds:${local.region_account}:*:${var.project}-${each.key}*"]
  }

  statement {
    sid       = "RdsRead"
    actions   = ["rds:Describe*", "rds:List*"]
    resources = ["*"]
  }

  # RDS-managed master secrets are named rds!db-<id>; RDS creates them on our behalf.
  statement {
    sid       = "RdsManagedSecrets"
    actions   = ["secretsmanager:CreateSecret", "secretsmanager:DeleteSecret", "secretsmanager:TagResource", "secretsmanager:RotateSecret"]
    resources = ["arn:${local.partition}:secretsmanager:${local.region_account}:secret:rds!*"]
  }

  statement {
    sid = "OwnRolesWithBoundary"
    actions = [
      "iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:AttachRolePolicy",
      "iam:DetachRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
    ]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/${var.project}-${each.key}-*"]
    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [aws_iam_policy.workload_boundary[each.key].arn]
    }
  }

  statement {
    sid = "OwnRolesAndPolicies"
    actions = [
      "iam:Get*", "iam:List*", "iam:TagRole", "iam:UntagRole", "iam:UpdateRole*",
      "iam:UpdateAssumeRolePolicy", "iam:DeleteRole",
      "iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion",
      "iam:TagPolicy", "iam:UntagPolicy",
      "iam:CreateInstanceProfile", "iam:DeleteInstanceProfile", "iam:AddRoleToInstanceProfile",
      "iam:RemoveRoleFromInstanceProfile", "iam:TagInstanceProfile",
    ]
    resources = [
      "arn:${local.partition}:iam::${local.account_id}:role/${var.project}-${each.key}-*",
      "arn:${local.partition}:iam::${local.account_id}:policy/${var.project}-${each.key}-*",
      "arn:${local.partition}:iam::${local.account_id}:instance-profile/${var.project}-${each.key}-*",
    ]
  }

  statement {
    sid       = "PassOwnRolesToTheirServices"
    actions   = ["iam:PassRole"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/${var.project}-${each.key}-*"]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["eks.amazonaws.com", "ec2.amazonaws.com", "monitoring.rds.amazonaws.com", "vpc-flow-logs.amazonaws.com", "pods.eks.amazonaws.com"]
    }
  }

  statement {
    sid       = "ClusterOidcProvider"
    actions   = ["iam:*OpenIDConnectProvider*"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:oidc-provider/oidc.eks.${var.aws_region}.amazonaws.com/*"]
  }

  statement {
    sid       = "IamRead"
    actions   = ["iam:Get*", "iam:List*"]
    resources = ["*"]
  }

  statement {
    sid       = "ServiceLinkedRoles"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values = [
        "eks.amazonaws.com", "eks-nodegroup.amazonaws.com", "autoscaling.amazonaws.com",
        "rds.amazonaws.com", "elasticloadbalancing.amazonaws.com", "spot.amazonaws.com",
      ]
    }
  }

  statement {
    sid       = "NoBoundaryRemoval"
    effect    = "Deny"
    actions   = ["iam:DeleteRolePermissionsBoundary", "iam:DeletePolicy", "iam:CreatePolicyVersion", "iam:DeletePolicyVersion"]
    resources = [aws_iam_policy.workload_boundary[each.key].arn]
  }

  statement {
    sid    = "StateReadWrite"
    effect = "Allow"
    actions = [
      "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
    ]
    resources = ["${local.state_bucket_arn}/${each.key}/*"]
  }

  statement {
    sid       = "StateList"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
  }
}

#trivy:ignore:AVD-AWS-0057 ec2/logs/kms/acm have no name-scoped ARNs at creation time; pinned to the region, see ci_roles.tf
resource "aws_iam_policy" "apply" {
  for_each = var.environments

  #checkov:skip=CKV_AWS_286: IAM writes are limited to the environment's name prefix and require the boundary
  #checkov:skip=CKV_AWS_287: reads needed to plan; data reads of secrets are not granted
  #checkov:skip=CKV_AWS_288: data exfiltration via ec2/logs is inherent to managing them; region-pinned
  #checkov:skip=CKV_AWS_289: management of ec2/kms/logs cannot be name-scoped before creation; region-pinned
  #checkov:skip=CKV_AWS_290: write on ec2/autoscaling/logs/kms is what this role exists for; region-pinned
  #checkov:skip=CKV_AWS_355: ec2/autoscaling/logs/kms resources are created by this role and have no ARN yet
  name        = "${var.project}-github-${each.key}-apply"
  description = "What the ${each.key} apply job may change"
  policy      = data.aws_iam_policy_document.apply[each.key].json
}

module "apply_role" {
  source   = "../../modules/github-oidc-role"
  for_each = var.environments

  name                 = "${var.project}-github-${each.key}-apply"
  oidc_provider_arn    = local.oidc_provider_arn
  github_repository    = var.github_repository
  github_environment   = each.key
  max_session_duration = 7200
  managed_policy_arns  = [aws_iam_policy.apply[each.key].arn]
  inline_policies = {
    state = data.aws_iam_policy_document.state_read[each.key].json
  }
}
