output "vpc_id" {
  description = "VPC of the environment (cluster-vars vpc_id)."
  value       = module.vpc.vpc_id
}

output "vpc_cidr" {
  description = "VPC range (cluster-vars vpc_cidr)."
  value       = module.vpc.vpc_cidr_block
}

output "azs" {
  description = "Availability zones in use."
  value       = var.availability_zones
}

output "private_subnet_ids" {
  description = "Subnets of the nodes, pods and internal load balancers."
  value       = module.vpc.private_subnets
}

output "public_subnet_ids" {
  description = "Subnets of Internet-facing load balancers and NAT gateways."
  value       = module.vpc.public_subnets
}

output "database_subnet_group_name" {
  description = "Subnet group of the RDS instance (no route to the Internet)."
  value       = module.vpc.database_subnet_group_name
}

output "logs_kms_key_arn" {
  description = "KMS key for CloudWatch log groups of this environment."
  value       = aws_kms_key.logs.arn
}

output "nat_public_ips" {
  description = "Egress addresses of the environment (allow-lists elsewhere)."
  value       = module.vpc.nat_public_ips
}
