environment  = "dev"
aws_region   = "eu-west-1"
state_bucket = "example-org-task-platform-tfstate"

availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
vpc_cidr           = "10.10.0.0/16"
# prod: one NAT gateway per AZ; dev/staging: one shared NAT gateway (cost, see docs/decisions/0051).
nat_gateway_per_az = false
