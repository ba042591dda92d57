terraform {
  required_version = "~> 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.28.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.38.0"
    }
    flux = {
      source  = "fluxcd/flux"
      version = "~> 1.8.5"
    }
  }

  # bucket, key and region come from environments/<env>/platform.tfbackend.
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
