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

# A token the AWS provider signs from the job's role session: the providers below need no
# `aws` CLI in the job image, and the token (15 minutes) is opened afresh in plan and in apply,
# never written to the state or the plan file.
ephemeral "aws_eks_cluster_auth" "this" {
  name = local.cluster.cluster_name
}

provider "kubernetes" {
  host                   = data.aws_eks_cluster.this.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)
  token                  = ephemeral.aws_eks_cluster_auth.this.token
}

provider "helm" {
  kubernetes = {
    host                   = data.aws_eks_cluster.this.endpoint
    cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)
    token                  = ephemeral.aws_eks_cluster_auth.this.token
  }
}
