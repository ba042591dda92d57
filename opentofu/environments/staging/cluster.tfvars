environment  = "staging"
aws_region   = "eu-west-1"
state_bucket = "example-org-task-platform-tfstate"

kubernetes_version = "1.34"

# Private endpoint for nodes and in-VPC clients; the public one admits only the static egress
# range of the CI runners and the admin VPN (placeholder range below), never 0.0.0.0/0.
endpoint_public_access       = true
endpoint_public_access_cidrs = ["203.0.113.0/28"]

node_pools = {
  system = {
    instance_types = ["m7i.large"]
    min_size       = 2
    desired_size   = 2
    max_size       = 3
  }
  apps = {
    instance_types = ["m7i.large"]
    min_size       = 2
    desired_size   = 2
    max_size       = 6
  }
  # Spot, from zero; max_size is the CI cost ceiling of this environment.
  runners = {
    instance_types = ["m7i.xlarge", "m6i.xlarge", "m7a.xlarge", "m6a.xlarge", "m5.xlarge"]
    min_size       = 0
    desired_size   = 0
    max_size       = 6
    disk_size_gib  = 100
  }
}
