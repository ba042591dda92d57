# Inputs every environment stack shares, linked into each stack as common.tf (one file, so the
# stacks cannot drift apart); values come from environments/<env>/<stack>.tfvars.
variable "project" {
  description = "Prefix of every resource name; the CI apply role may only touch resources carrying it."
  type        = string
  default     = "task-platform"
}

variable "environment" {
  description = "dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be dev, staging or prod."
  }
}

variable "aws_region" {
  description = "AWS region of the environment."
  type        = string
}

variable "state_bucket" {
  description = "S3 bucket with the state of the earlier stages (same bucket as this stack's backend)."
  type        = string
}

locals {
  name = "${var.project}-${var.environment}"
  tags = {
    project     = var.project
    environment = var.environment
    stack       = basename(abspath(path.module))
    managed-by  = "opentofu"
  }
  # Roles created here must carry it: the apply role is only allowed to create bounded roles.
  permissions_boundary_arn = data.terraform_remote_state.global.outputs.workload_boundary_arns[var.environment]
}

data "terraform_remote_state" "global" {
  backend = "s3"
  config = {
    bucket = var.state_bucket
    key    = "global/terraform.tfstate"
    region = var.aws_region
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
