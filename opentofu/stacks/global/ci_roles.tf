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

# Guards every CI role carries, whatever else it is granted: the state key's life cycle belongs
# to the account administrators, and no CI job needs a secret's value (RDS keeps the database
# password, the Flux Git credential comes from the GitHub environment).
data "aws_iam_policy_document" "ci_guard" {
  statement {
    sid    = "NoStateKeyAdministration"
    effect = "Deny"
    actions = [
      "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:DisableKey", "kms:EnableKey",
      "kms:PutKeyPolicy", "kms:CreateGrant", "kms:RevokeGrant", "kms:RetireGrant",
      "kms:DisableKeyRotation", "kms:UpdateKeyDescription", "kms:TagResource", "kms:UntagResource",
      "kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias", "kms:ReplicateKey",
      "kms:UpdatePrimaryRegion", "kms:ImportKeyMaterial", "kms:DeleteImportedKeyMaterial",
    ]
    resources = [var.state_kms_key_arn]
  }

  statement {
    sid       = "NoSecretValues"
    effect    = "Deny"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecret"]
    resources = ["*"]
  }

  statement {
    sid       = "NoStateBucketAdministration"
    effect    = "Deny"
    actions   = ["s3:DeleteBucket*", "s3:PutBucket*", "s3:PutEncryptionConfiguration", "s3:PutLifecycleConfiguration", "s3:DeleteObjectVersion", "s3:PutObjectAcl", "s3:PutObjectVersionAcl"]
    resources = [local.state_bucket_arn, "${local.state_bucket_arn}/*"]
  }
}

module "plan_role" {
  source   = "../../modules/github-oidc-role"
  for_each = var.environments

  name                 = "${var.project}-github-${each.key}-plan"
  oidc_provider_arn    = local.oidc_provider_arn
  github_repository    = var.github_repository
  github_environment   = "${each.key}-plan"
  max_session_duration = local.ci_session_seconds
  managed_policy_arns  = ["arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"]
  inline_policies = {
    state = data.aws_iam_policy_document.state_read[each.key].json
    guard = data.aws_iam_policy_document.plan_guard[each.key].json
    ci    = data.aws_iam_policy_document.ci_guard.json
  }
}

locals {
  # Jobs time out after 60 minutes (opentofu-env.yaml); the session outlives them with margin
  # (role-duration-seconds in the workflow asks for exactly this).
  ci_session_seconds = 7200

  # Domain of each environment below the shared public zone: the environment's certificate
  # validation records are the only DNS names its apply role may change.
  environment_domains = { for env in var.environments : env => "${env}.${var.dns_zone_name}" }
  env_cluster_arn     = { for env in var.environments : env => "arn:${local.partition}:eks:${local.region_account}:cluster/${var.project}-${env}" }
  env_db_arn          = { for env in var.environments : env => "arn:${local.partition}:rds:${local.region_account}:db:${var.project}-${env}" }
}

# Every role an environment's stacks create must carry this boundary, so that the apply role
# cannot mint a role more powerful than the environment's workloads need: an allow-list of the
# services the cluster, its nodes, its controllers and the database's monitoring use, each
# limited to this environment's resources (by name, by the environment tag every stack sets
# through default_tags, or by the cluster tags the controllers put on what they create), and
# no IAM writes, no state access, no key deletion.
data "aws_iam_policy_document" "workload_boundary" {
  for_each = var.environments

  #checkov:skip=CKV_AWS_356: describe/list calls and tag-conditioned statements have no narrower resource
  #checkov:skip=CKV_AWS_111: writes are conditioned on this environment's tags or names
  #checkov:skip=CKV_AWS_109: a permissions boundary only caps; no permission-management action is allowed
  #checkov:skip=CKV_AWS_108: reads of data are limited to this environment's secrets and keys
  #checkov:skip=CKV_AWS_107: registry login tokens are what nodes and source-controller need to pull images
  statement {
    sid       = "Reads"
    actions   = ["ec2:Describe*", "ec2:Get*", "autoscaling:Describe*", "elasticloadbalancing:Describe*", "eks:Describe*", "eks:List*", "ecr:GetAuthorizationToken", "acm:DescribeCertificate", "acm:ListCertificates", "acm:GetCertificate", "logs:DescribeLogGroups", "tag:GetResources", "cloudwatch:PutMetricData", "wafv2:GetWebACL*", "waf-regional:GetWebACL*", "shield:GetSubscriptionState", "shield:DescribeProtection", "cognito-idp:DescribeUserPoolClient", "iam:ListServerCertificates", "iam:GetServerCertificate", "sts:GetCallerIdentity"]
    resources = ["*"]
  }

  # Nodes, the VPC CNI, the EBS CSI driver and the load balancer controller manage network
  # interfaces, volumes and security groups. New resources (no tags yet) and resources of this
  # environment pass; anything tagged for another environment does not.
  statement {
    sid       = "Ec2OfThisEnvironment"
    actions   = ["ec2:*"]
    resources = ["*"]
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:ResourceTag/environment"
      values   = [each.key]
    }
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:RequestTag/environment"
      values   = [each.key]
    }
  }

  statement {
    sid       = "LoadBalancersOfThisCluster"
    actions   = ["elasticloadbalancing:*"]
    resources = ["*"]
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = ["${var.project}-${each.key}"]
    }
  }

  statement {
    sid       = "NodeGroupsOfThisCluster"
    actions   = ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup", "autoscaling:UpdateAutoScalingGroup"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/eks:cluster-name"
      values   = ["${var.project}-${each.key}"]
    }
  }

  # Nodes and controllers read their cluster and exchange Pod Identity tokens; none changes it.
  statement {
    sid       = "ThisCluster"
    actions   = ["eks:Describe*", "eks:List*", "eks:AccessKubernetesApi", "eks-auth:AssumeRoleForPodIdentity"]
    resources = [local.env_cluster_arn[each.key], "arn:${local.partition}:eks:${local.region_account}:*/${var.project}-${each.key}/*"]
  }

  # Pull-only, from any registry: the addon images (VPC CNI, CoreDNS, …) live in AWS's own
  # registry accounts, the Task API's in this one.
  statement {
    sid       = "PullImages"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages", "ecr:ListImages", "ecr:DescribeRepositories"]
    resources = ["arn:${local.partition}:ecr:*:*:repository/*"]
  }

  statement {
    sid     = "LogsOfThisEnvironment"
    actions = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams", "logs:PutRetentionPolicy"]
    resources = [
      "arn:${local.partition}:logs:${local.region_account}:log-group:/aws/vpc-flow-log/${var.project}-${each.key}*",
      "arn:${local.partition}:logs:${local.region_account}:log-group:/aws/eks/${var.project}-${each.key}/*",
      "arn:${local.partition}:logs:${local.region_account}:log-group:/aws/rds/instance/${var.project}-${each.key}/*",
      "arn:${local.partition}:logs:${local.region_account}:log-group:RDSOSMetrics:*",
    ]
  }

  # Keys of this environment (EKS secrets, database, logs) and AWS-managed keys (aws/ebs), only
  # through the services that use them; the state key has no environment tag and S3 is not
  # among the services.
  statement {
    sid       = "KeysOfThisEnvironmentThroughServices"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:CreateGrant"]
    resources = ["*"]
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:ResourceTag/environment"
      values   = [each.key]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ec2.${var.aws_region}.amazonaws.com", "secretsmanager.${var.aws_region}.amazonaws.com", "eks.${var.aws_region}.amazonaws.com", "logs.${var.aws_region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "KeysOfThisEnvironment"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:CreateGrant"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/environment"
      values   = [each.key]
    }
  }

  # The secrets this environment's workloads read: the operator-made <cluster_name>/… ones and
  # the database secret RDS manages for this environment's instance.
  statement {
    sid       = "SecretsOfThisEnvironmentByName"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = ["arn:${local.partition}:secretsmanager:${local.region_account}:secret:${var.project}-${each.key}/*"]
  }

  statement {
    sid       = "DatabaseSecretOfThisEnvironment"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = ["arn:${local.partition}:secretsmanager:${local.region_account}:secret:rds!*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/aws:rds:primaryDBInstanceArn"
      values   = [local.env_db_arn[each.key]]
    }
  }

  statement {
    sid       = "LoadBalancerServiceLinkedRole"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["elasticloadbalancing.amazonaws.com"]
    }
  }

  statement {
    sid    = "NoPrivilegeEscalation"
    effect = "Deny"
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

  statement {
    sid       = "NoStateKey"
    effect    = "Deny"
    actions   = ["kms:*"]
    resources = [var.state_kms_key_arn]
  }

  statement {
    sid       = "NoKeyDeletion"
    effect    = "Deny"
    actions   = ["kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy"]
    resources = ["*"]
  }
}

#trivy:ignore:AVD-AWS-0057 a permissions boundary grants nothing by itself; its wildcards are tag- or service-conditioned
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

# What the apply job of one environment may change. Every write names this environment's
# resources: by name prefix where the service has names in its ARNs (EKS, RDS, IAM, log
# groups, KMS aliases), by the `environment` tag that every stack's provider sets through
# default_tags where it has not (EC2, KMS keys, ACM), and by record name for DNS. Resources of
# another environment carry its tag or name and stay out of reach.
#trivy:ignore:AVD-AWS-0342 PassRole is limited to the environment's own roles and to the services that run them
data "aws_iam_policy_document" "apply" {
  for_each = var.environments

  #checkov:skip=CKV_AWS_356: describe/list calls and tag-conditioned creates have no ARN beforehand; every write is tag-, name- or service-conditioned
  #checkov:skip=CKV_AWS_111: writes are conditioned on this environment's tag or name prefix
  #checkov:skip=CKV_AWS_109: permission management is limited to this environment's role names and its boundary
  #checkov:skip=CKV_AWS_107: iam:Get* reads roles for planning; no credential-issuing action is granted
  #checkov:skip=CKV_AWS_108: ssm:GetParameter reads the public EKS AMI parameters; secret values are denied by the CI guard

  statement {
    sid = "Reads"
    actions = [
      "ec2:Describe*", "ec2:Get*", "autoscaling:Describe*", "elasticloadbalancing:Describe*",
      "eks:Describe*", "eks:List*", "rds:Describe*", "rds:List*", "kms:ListAliases", "kms:ListKeys",
      "logs:DescribeLogGroups", "logs:ListTagsForResource", "acm:ListCertificates", "route53:Get*", "route53:List*",
      "secretsmanager:DescribeSecret", "secretsmanager:GetResourcePolicy", "secretsmanager:ListSecrets",
      "ssm:GetParameter", "ssm:GetParameters", "iam:Get*", "iam:List*", "sts:GetCallerIdentity",
      "pi:DescribeDimensionKeys", "pi:GetResourceMetrics",
    ]
    resources = ["*"]
  }

  # Creating: the request must tag the new resource with this environment, and any existing
  # resource the call involves (the VPC of a new subnet, the security group of a new rule) must
  # not belong to another environment.
  statement {
    sid       = "Ec2CreateInThisEnvironment"
    actions   = ["ec2:Create*", "ec2:RunInstances", "ec2:AllocateAddress", "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/environment"
      values   = [each.key]
    }
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:ResourceTag/environment"
      values   = [each.key]
    }
  }

  # Changing or deleting: only resources tagged with this environment.
  statement {
    sid = "Ec2ChangeThisEnvironment"
    actions = [
      "ec2:Delete*", "ec2:Modify*", "ec2:Revoke*", "ec2:Replace*", "ec2:Associate*", "ec2:Disassociate*",
      "ec2:Attach*", "ec2:Detach*", "ec2:CreateRoute", "ec2:CreateTags", "ec2:TerminateInstances",
      "ec2:ReleaseAddress", "ec2:Enable*", "ec2:Disable*", "ec2:UpdateSecurityGroupRuleDescriptions*",
      "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress",
    ]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/environment"
      values   = [each.key]
    }
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:RequestTag/environment"
      values   = [each.key]
    }
  }

  # Tagging an existing resource that has no environment tag would adopt it (and another
  # environment's untagged resources with it). Only the defaults a new VPC comes with (its
  # security group, network ACL and route table, which the network stack adopts) are exempt.
  statement {
    sid           = "NoAdoptingUntaggedResources"
    effect        = "Deny"
    actions       = ["ec2:CreateTags"]
    not_resources = ["arn:${local.partition}:ec2:${local.region_account}:security-group/*", "arn:${local.partition}:ec2:${local.region_account}:network-acl/*", "arn:${local.partition}:ec2:${local.region_account}:route-table/*"]
    condition {
      test     = "Null"
      variable = "ec2:CreateAction"
      values   = ["true"]
    }
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/environment"
      values   = ["true"]
    }
  }

  statement {
    sid       = "OwnCluster"
    actions   = ["eks:*"]
    resources = [local.env_cluster_arn[each.key], "arn:${local.partition}:eks:${local.region_account}:*/${var.project}-${each.key}/*"]
  }

  # Addon versions are read per Kubernetes version, not per cluster.
  statement {
    sid       = "EksAddonVersions"
    actions   = ["eks:DescribeAddonVersions", "eks:DescribeAddonConfiguration", "eks:DescribeClusterVersions"]
    resources = ["*"]
  }

  statement {
    sid       = "OwnDatabase"
    actions   = ["rds:*"]
    resources = ["arn:${local.partition}:rds:${local.region_account}:*:${var.project}-${each.key}*"]
  }

  # CreateDBInstance also authorises the default option group the engine uses.
  statement {
    sid       = "DefaultOptionGroups"
    actions   = ["rds:CreateDBInstance", "rds:ModifyDBInstance"]
    resources = ["arn:${local.partition}:rds:${local.region_account}:og:default:*"]
  }

  # RDS creates and rotates the master secret (rds!db-…) with the caller's permissions; it tags
  # it with the instance's ARN, which names the environment.
  statement {
    sid       = "RdsCreatesTheMasterSecret"
    actions   = ["secretsmanager:CreateSecret", "secretsmanager:TagResource"]
    resources = ["arn:${local.partition}:secretsmanager:${local.region_account}:secret:rds!*"]
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "aws:CalledVia"
      values   = ["rds.amazonaws.com"]
    }
  }

  statement {
    sid       = "OwnDatabaseSecret"
    actions   = ["secretsmanager:DeleteSecret", "secretsmanager:RotateSecret", "secretsmanager:TagResource", "secretsmanager:UntagResource"]
    resources = ["arn:${local.partition}:secretsmanager:${local.region_account}:secret:rds!*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/aws:rds:primaryDBInstanceArn"
      values   = [local.env_db_arn[each.key]]
    }
  }

  statement {
    sid       = "KmsCreateTaggedKeys"
    actions   = ["kms:CreateKey"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/environment"
      values   = [each.key]
    }
  }

  # Keys of this environment: administered (the stacks set policy, rotation, deletion window)
  # and used. The state key carries no environment tag.
  statement {
    sid = "OwnKeys"
    actions = [
      "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags",
      "kms:PutKeyPolicy", "kms:EnableKeyRotation", "kms:TagResource", "kms:UntagResource",
      "kms:ScheduleKeyDeletion", "kms:UpdateKeyDescription", "kms:CreateGrant", "kms:ListGrants",
      "kms:RevokeGrant", "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*",
      "kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias",
    ]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/environment"
      values   = [each.key]
    }
  }

  statement {
    sid       = "OwnKeyAliases"
    actions   = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
    resources = ["arn:${local.partition}:kms:${local.region_account}:alias/${var.project}-${each.key}-*"]
  }

  statement {
    sid     = "OwnLogGroups"
    actions = ["logs:*"]
    resources = [
      "arn:${local.partition}:logs:${local.region_account}:log-group:/aws/vpc-flow-log/${var.project}-${each.key}*",
      "arn:${local.partition}:logs:${local.region_account}:log-group:/aws/eks/${var.project}-${each.key}/*",
      "arn:${local.partition}:logs:${local.region_account}:log-group:/aws/rds/instance/${var.project}-${each.key}/*",
    ]
  }

  statement {
    sid       = "CertificateRequestTagged"
    actions   = ["acm:RequestCertificate", "acm:AddTagsToCertificate"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/environment"
      values   = [each.key]
    }
  }

  statement {
    sid       = "OwnCertificates"
    actions   = ["acm:DescribeCertificate", "acm:ListTagsForCertificate", "acm:DeleteCertificate", "acm:AddTagsToCertificate", "acm:RemoveTagsFromCertificate", "acm:GetCertificate"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/environment"
      values   = [each.key]
    }
  }

  # Certificate validation records of this environment's domain, nothing else in the zone.
  statement {
    sid       = "OwnValidationRecords"
    actions   = ["route53:ChangeResourceRecordSets"]
    resources = ["arn:${local.partition}:route53:::hostedzone/*"]
    condition {
      test     = "ForAllValues:StringLike"
      variable = "route53:ChangeResourceRecordSetsNormalizedRecordNames"
      values   = ["_*.${local.environment_domains[each.key]}"]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "route53:ChangeResourceRecordSetsRecordTypes"
      values   = ["CNAME"]
    }
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
      "iam:TagRole", "iam:UntagRole", "iam:UpdateRole", "iam:UpdateRoleDescription",
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
    sid       = "NoBoundaryChange"
    effect    = "Deny"
    actions   = ["iam:DeletePolicy", "iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:policy/${var.project}-*-workload-boundary"]
  }

  statement {
    sid       = "NoBoundaryRemoval"
    effect    = "Deny"
    actions   = ["iam:DeleteRolePermissionsBoundary"]
    resources = ["*"]
  }

  statement {
    sid       = "StateReadWrite"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${local.state_bucket_arn}/${each.key}/*"]
  }

  statement {
    sid       = "StateList"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${each.key}/*", "global/*"]
    }
  }
}

#trivy:ignore:AVD-AWS-0057 wildcards are describe/list reads or tag-conditioned writes, see the statements in ci_roles.tf
resource "aws_iam_policy" "apply" {
  for_each = var.environments

  #checkov:skip=CKV_AWS_286: IAM writes are limited to the environment's name prefix and require the boundary
  #checkov:skip=CKV_AWS_287: reads needed to plan; secret values are denied by the CI guard
  #checkov:skip=CKV_AWS_288: reads needed to plan; secret values are denied by the CI guard
  #checkov:skip=CKV_AWS_289: permission management is limited to the environment's role names and its boundary
  #checkov:skip=CKV_AWS_290: writes are conditioned on the environment tag or name prefix
  #checkov:skip=CKV_AWS_355: describe/list reads and tag-conditioned creates have no ARN beforehand
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
  max_session_duration = local.ci_session_seconds
  managed_policy_arns  = [aws_iam_policy.apply[each.key].arn]
  inline_policies = {
    state = data.aws_iam_policy_document.state_read[each.key].json
    ci    = data.aws_iam_policy_document.ci_guard.json
  }
}
