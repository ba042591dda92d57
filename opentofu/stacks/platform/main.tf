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

data "terraform_remote_state" "database" {
  backend = "s3"
  config = {
    bucket = var.state_bucket
    key    = "${var.environment}/database/terraform.tfstate"
    region = var.aws_region
  }
}

locals {
  network  = data.terraform_remote_state.network.outputs
  cluster  = data.terraform_remote_state.cluster.outputs
  database = data.terraform_remote_state.database.outputs
  global   = data.terraform_remote_state.global.outputs
}
