provider "aws" {
  region = var.aws_region

  default_tags {
    tags = {
      project    = var.project
      stack      = "global"
      managed-by = "opentofu"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
