data "terraform_remote_state" "network" {
  backend = "s3"
  config = {
    bucket = var.state_bucket
    key    = "${var.environment}/network/terraform.tfstate"
    region = var.aws_region
  }
}

data "terraform_remote_state" "cluster" {
  backend = "s3"
  config = {
    bucket = var.state_bucket
    key    = "${var.environment}/cluster/terraform.tfstate"
    region = var.aws_region
  }
}

locals {
  network     = data.terraform_remote_state.network.outputs
  cluster     = data.terraform_remote_state.cluster.outputs
  db_port     = 5432
  db_name     = "task_api"
  db_username = "task_api"
}

data "aws_iam_policy_document" "database_key" {
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
}

# One key for the data at rest, Performance Insights and the master password secret, so that
# access to the database's data is governed in one place.
resource "aws_kms_key" "database" {
  description             = "${local.name} PostgreSQL storage, Performance Insights and master secret"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.database_key.json
}

resource "aws_kms_alias" "database" {
  name          = "alias/${local.name}-database"
  target_key_id = aws_kms_key.database.key_id
}

resource "aws_security_group" "database" {
  #checkov:skip=CKV2_AWS_5: attached to the RDS instance through the rds module (vpc_security_group_ids)
  name        = "${local.name}-database"
  description = "PostgreSQL, reachable from the apps nodes only"
  vpc_id      = local.network.vpc_id

  tags = { Name = "${local.name}-database" }
}

resource "aws_vpc_security_group_ingress_rule" "database_from_apps_nodes" {
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the apps node group"
  referenced_security_group_id = local.cluster.apps_node_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
}

module "db" {
  #checkov:skip=CKV_TF_1: registry module pinned to an exact version; registry sources cannot take a commit hash
  source  = "terraform-aws-modules/rds/aws"
  version = "7.2.0"

  identifier = local.name

  engine               = "postgres"
  engine_version       = var.engine_version
  family               = "postgres${split(".", var.engine_version)[0]}"
  major_engine_version = split(".", var.engine_version)[0]
  instance_class       = var.instance_class

  allocated_storage     = var.allocated_storage_gib
  max_allocated_storage = var.max_allocated_storage_gib
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.database.arn

  db_name  = local.db_name
  username = local.db_username
  port     = local.db_port
  # RDS generates the password and keeps it in Secrets Manager; it never enters the state.
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.database.arn
  # RDS rotates the managed password whatever is set here (by default every 7 days, at a time
  # it picks). Managed explicitly, it rotates weekly in a quiet hour after the maintenance
  # window: the old password stops working at once, External Secrets refreshes the Secret
  # within a minute, and the Task API reads the mounted credentials for every new connection
  # (docs/decisions/0054), so sessions opened before keep working and new ones use the new one.
  manage_master_user_password_rotation              = true
  master_user_password_rotate_immediately           = false
  master_user_password_rotation_schedule_expression = var.master_password_rotation_schedule
  master_user_password_rotation_duration            = "1h"

  multi_az               = var.multi_az
  create_db_subnet_group = false
  db_subnet_group_name   = local.network.database_subnet_group_name
  vpc_security_group_ids = [aws_security_group.database.id]
  publicly_accessible    = false

  iam_database_authentication_enabled = true

  backup_retention_period          = var.backup_retention_days
  backup_window                    = "02:00-03:00"
  maintenance_window               = "Sun:03:30-Sun:04:30"
  copy_tags_to_snapshot            = true
  skip_final_snapshot              = false
  final_snapshot_identifier_prefix = "${local.name}-final"
  deletion_protection              = var.deletion_protection
  delete_automated_backups         = !var.deletion_protection
  auto_minor_version_upgrade       = true

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.database.arn
  performance_insights_retention_period = 7

  monitoring_interval                  = 60
  create_monitoring_role               = true
  monitoring_role_name                 = "${local.name}-rds-monitoring"
  monitoring_role_use_name_prefix      = false
  monitoring_role_permissions_boundary = local.permissions_boundary_arn

  enabled_cloudwatch_logs_exports        = ["postgresql", "upgrade"]
  create_cloudwatch_log_group            = true
  cloudwatch_log_group_retention_in_days = 365
  cloudwatch_log_group_kms_key_id        = local.network.logs_kms_key_arn

  create_db_parameter_group       = true
  parameter_group_name            = "${local.name}-postgres"
  parameter_group_use_name_prefix = true
  parameters = [
    # Refuse any connection that is not TLS.
    { name = "rds.force_ssl", value = "1" },
    { name = "log_connections", value = "1" },
    { name = "log_disconnections", value = "1" },
    { name = "log_min_duration_statement", value = "500" },
    { name = "password_encryption", value = "scram-sha-256" },
  ]

  tags = local.tags
}
