provider "aws" {
  region = var.aws_region

  default_tags {
    tags = local.tags
  }
}

# The cluster exists before this stack runs (separate state), so these providers are configured
# from known values at plan time, never from resources created in the same apply.
data "aws_eks_cluster" "this" {
  name = local.cluster.cluster_name
}

locals {
  kube_exec = {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", local.cluster.cluster_name, "--region", var.aws_region]
  }
}

provider "kubernetes" {
  host                   = data.aws_eks_cluster.this.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)

  exec {
    api_version = local.kube_exec.api_version
    command     = local.kube_exec.command
    args        = local.kube_exec.args
  }
}

provider "flux" {
  kubernetes = {
    host                   = data.aws_eks_cluster.this.endpoint
    cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)
    exec                   = local.kube_exec
  }

  git = {
    url    = "https://github.com/${var.github_repository}.git"
    branch = var.flux_git_branch
    http = {
      username = "git"
      password = var.flux_git_token
    }
  }
}
