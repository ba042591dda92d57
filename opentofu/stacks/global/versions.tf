terraform {
  required_version = "~> 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.28.0"
    }
  }

  # bucket, key and region come from environments/global/global.tfbackend.
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
