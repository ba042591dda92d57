terraform {
  required_version = "~> 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.28.0"
    }
    # Required by the EKS module and its submodules; pinned here so every root resolves the same builds.
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.1.0"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.13.1"
    }
    cloudinit = {
      source  = "hashicorp/cloudinit"
      version = "~> 2.3.7"
    }
    null = {
      source  = "hashicorp/null"
      version = "~> 3.2.4"
    }
  }

  # bucket, key and region come from environments/<env>/cluster.tfbackend.
  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
