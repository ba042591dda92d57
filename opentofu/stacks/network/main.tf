locals {
  # /16 → private /20 per AZ (nodes and pods share them with the VPC CNI), public and
  # database /24 per AZ, leaving 10.x.64.0/18 and up free for later growth.
  private_subnets  = [for i in range(3) : cidrsubnet(var.vpc_cidr, 4, i)]
  public_subnets   = [for i in range(3) : cidrsubnet(var.vpc_cidr, 8, 48 + i)]
  database_subnets = [for i in range(3) : cidrsubnet(var.vpc_cidr, 8, 52 + i)]
}

data "aws_iam_policy_document" "flow_log_key" {
  #checkov:skip=CKV_AWS_109: key policy; Resource "*" is this key only, the account root delegates to IAM
  #checkov:skip=CKV_AWS_111: key policy; Resource "*" is this key only, the account root delegates to IAM
  #checkov:skip=CKV_AWS_356: key policy; Resource "*" is this key only, the account root delegates to IAM
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncrypts"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.aws_region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${var.aws_region}:${data.aws_caller_identity.current.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "logs" {
  description             = "${local.name} CloudWatch log groups"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.flow_log_key.json
}

resource "aws_kms_alias" "logs" {
  name          = "alias/${local.name}-logs"
  target_key_id = aws_kms_key.logs.key_id
}

module "vpc" {
  #checkov:skip=CKV_TF_1: registry module pinned to an exact version; registry sources cannot take a commit hash
  source  = "terraform-aws-modules/vpc/aws"
  version = "6.6.0"

  name = local.name
  cidr = var.vpc_cidr
  azs  = var.availability_zones

  private_subnets  = local.private_subnets
  public_subnets   = local.public_subnets
  database_subnets = local.database_subnets

  create_database_subnet_group       = true
  database_subnet_group_name         = "${local.name}-database"
  create_database_subnet_route_table = true
  # Database subnets have no route to the Internet at all, not even through NAT.
  create_database_nat_gateway_route      = false
  create_database_internet_gateway_route = false

  enable_nat_gateway     = true
  single_nat_gateway     = !var.nat_gateway_per_az
  one_nat_gateway_per_az = var.nat_gateway_per_az

  enable_dns_hostnames = true
  enable_dns_support   = true

  map_public_ip_on_launch = false

  # Lock the default security group and NACL down: nothing may rely on them.
  manage_default_security_group  = true
  default_security_group_ingress = []
  default_security_group_egress  = []

  enable_flow_log                         = true
  flow_log_destination_type               = "cloud-watch-logs"
  flow_log_traffic_type                   = "ALL"
  flow_log_max_aggregation_interval       = 60
  create_flow_log_cloudwatch_log_group    = true
  create_flow_log_cloudwatch_iam_role     = true
  vpc_flow_log_iam_role_name              = "${local.name}-vpc-flow-log"
  vpc_flow_log_iam_role_use_name_prefix   = false
  vpc_flow_log_iam_policy_name            = "${local.name}-vpc-flow-log"
  vpc_flow_log_iam_policy_use_name_prefix = false
  vpc_flow_log_permissions_boundary       = local.permissions_boundary_arn
  # /aws/vpc-flow-log/<project>-<env>: the apply role may manage log groups by this name only.
  flow_log_cloudwatch_log_group_name_suffix       = local.name
  flow_log_cloudwatch_log_group_retention_in_days = var.flow_log_retention_days
  flow_log_cloudwatch_log_group_kms_key_id        = aws_kms_key.logs.arn

  public_subnet_tags = {
    "kubernetes.io/role/elb" = "1"
  }
  private_subnet_tags = {
    "kubernetes.io/role/internal-elb" = "1"
  }

  tags = local.tags
}

resource "aws_security_group" "vpc_endpoints" {
  #checkov:skip=CKV2_AWS_5: attached to the interface endpoints through the vpc-endpoints module
  name        = "${local.name}-vpc-endpoints"
  description = "HTTPS from inside the VPC to interface endpoints"
  vpc_id      = module.vpc.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "vpc_endpoints_https" {
  security_group_id = aws_security_group.vpc_endpoints.id
  description       = "HTTPS from the VPC"
  cidr_ipv4         = module.vpc.vpc_cidr_block
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# Endpoints take image pulls, STS token exchanges (Pod Identity, IRSA), log shipping and secret
# reads off the NAT gateways: cheaper per GB and reachable when NAT is not.
module "vpc_endpoints" {
  #checkov:skip=CKV_TF_1: registry module pinned to an exact version; registry sources cannot take a commit hash
  source  = "terraform-aws-modules/vpc/aws//modules/vpc-endpoints"
  version = "6.6.0"

  vpc_id             = module.vpc.vpc_id
  security_group_ids = [aws_security_group.vpc_endpoints.id]

  endpoints = merge(
    {
      s3 = {
        service         = "s3"
        service_type    = "Gateway"
        route_table_ids = concat(module.vpc.private_route_table_ids, module.vpc.database_route_table_ids)
        tags            = { Name = "${local.name}-s3" }
      }
    },
    {
      for svc in var.interface_endpoints :
      replace(svc, ".", "_") => {
        service             = svc
        private_dns_enabled = true
        subnet_ids          = module.vpc.private_subnets
        tags                = { Name = "${local.name}-${svc}" }
      }
    },
  )

  tags = local.tags
}
