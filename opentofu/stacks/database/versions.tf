terraform {
  required_version = "~> 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.28.0"
    }
    # Required by the RDS module; pinned here so every root resolves the same builds.
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7.2"
    }
  }

  # bucket, key and region come from environments/<env>/database.tfbackend.
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
