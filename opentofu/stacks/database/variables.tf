variable "engine_version" {
  description = "PostgreSQL engine version (exact minor; minor upgrades happen in the maintenance window)."
  type        = string
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
}

variable "allocated_storage_gib" {
  description = "Initial storage."
  type        = number
  default     = 20
}

variable "max_allocated_storage_gib" {
  description = "Ceiling for storage autoscaling."
  type        = number
  default     = 100
}

variable "multi_az" {
  description = "Synchronous standby in a second AZ (prod: true)."
  type        = bool
}

variable "deletion_protection" {
  description = "Refuse DeleteDBInstance (prod: true)."
  type        = bool
}

variable "backup_retention_days" {
  description = "Automated backup and point-in-time-recovery window."
  type        = number

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35 (0 would disable backups)."
  }
}

variable "master_password_rotation_schedule" {
  description = "When RDS rotates the managed master password (Secrets Manager schedule, UTC): after the maintenance window, at low traffic."
  type        = string
  default     = "cron(0 5 ? * SUN *)"

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.master_password_rotation_schedule))
    error_message = "master_password_rotation_schedule must be a cron() or rate() expression."
  }
}
