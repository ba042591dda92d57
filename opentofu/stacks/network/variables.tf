variable "vpc_cidr" {
  description = "VPC range (a /16); subnets are carved from it, see main.tf."
  type        = string

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && endswith(var.vpc_cidr, "/16")
    error_message = "vpc_cidr must be a /16."
  }
}

variable "nat_gateway_per_az" {
  description = <<-EOT
    true: one NAT gateway per AZ, so losing an AZ does not cut the others off (prod).
    false: one shared NAT gateway, about a third of the hourly NAT cost, at the price of an
    AZ-wide single point of failure for egress (dev, staging). See docs/decisions/0051.
  EOT
  type        = bool
}

variable "flow_log_retention_days" {
  description = "CloudWatch retention of VPC flow logs."
  type        = number
  default     = 365
}

variable "interface_endpoints" {
  description = <<-EOT
    AWS services reached through interface endpoints instead of NAT. Each costs an hourly fee
    per AZ, so only the high-volume or availability-critical ones are listed by default:
    image pulls, STS (Pod Identity/IRSA), Pod Identity auth, logs and secret reads.
  EOT
  type        = list(string)
  default     = ["ecr.api", "ecr.dkr", "sts", "eks-auth", "logs", "secretsmanager"]
}

variable "availability_zones" {
  description = "The three AZs of the environment, named explicitly so that a new AZ in the region never reshuffles subnets."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) == 3
    error_message = "availability_zones must list exactly three zones."
  }
}
