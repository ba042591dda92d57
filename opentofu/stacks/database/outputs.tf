output "db_host" {
  description = "Hostname of the PostgreSQL endpoint."
  value       = module.db.db_instance_address
}

output "db_port" {
  description = "PostgreSQL port."
  value       = module.db.db_instance_port
}

output "db_name" {
  description = "Database of the Task API."
  value       = local.db_name
}

output "db_master_secret_arn" {
  description = "Secrets Manager secret (JSON username/password) managed by RDS; External Secrets reads it."
  value       = module.db.db_instance_master_user_secret_arn
}

output "db_kms_key_arn" {
  description = "Key that encrypts the master secret; External Secrets needs kms:Decrypt on it."
  value       = aws_kms_key.database.arn
}

output "db_security_group_id" {
  description = "Security group of the database."
  value       = aws_security_group.database.id
}
