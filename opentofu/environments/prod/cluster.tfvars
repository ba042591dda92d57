environment  = "prod"
aws_region   = "eu-west-1"
state_bucket = "example-org-task-platform-tfstate"

kubernetes_version = "1.34"

# Private endpoint for the nodes; the public one admits only these named ranges (placeholders
# from the documentation range: put the real static egress of the OpenTofu runner group and of
# the operators' VPN here, see docs/runbooks/bootstrap-environment.md).
endpoint_public_access_sources = {
  tofu-runners  = "203.0.113.0/28"
  operators-vpn = "198.51.100.0/28"
}

node_pools = {
  system = {
    instance_types = ["m7i.large"]
    min_size       = 3
    desired_size   = 3
    max_size       = 4
  }
  apps = {
    instance_types = ["m7i.xlarge"]
    min_size       = 3
    desired_size   = 3
    max_size       = 12
  }
  # Spot, from zero; max_size is the CI cost ceiling of this environment.
  runners = {
    instance_types = ["m7i.xlarge", "m6i.xlarge", "m7a.xlarge", "m6a.xlarge", "m5.xlarge"]
    min_size       = 0
    desired_size   = 0
    max_size       = 10
    disk_size_gib  = 100
  }
}

# Who can run kubectl/flux after bootstrap (access entries, cluster-admin): the platform team's
# IAM Identity Center permission set (role ARN without its path; see the bootstrap runbook).
cluster_admin_role_arns = ["arn:aws:iam::111111111111:role/AWSReservedSSO_PlatformAdmin_0123456789abcdef"]
