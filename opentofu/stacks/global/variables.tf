variable "project" {
  description = "Prefix of every resource name; the CI roles may only touch resources carrying it."
  type        = string
  default     = "task-platform"
}

variable "aws_region" {
  description = "Region of the registry, the state bucket and the environments."
  type        = string
}

variable "github_repository" {
  description = "owner/name of the repository whose workflows assume the roles."
  type        = string
  default     = "example-org/task-platform"
}

variable "environments" {
  description = "Environments that live in this AWS account; each gets a plan and an apply role."
  type        = set(string)
  default     = ["dev", "staging", "prod"]

  validation {
    condition     = alltrue([for e in var.environments : contains(["dev", "staging", "prod"], e)])
    error_message = "environments must be among dev, staging and prod."
  }
}

variable "state_bucket" {
  description = "S3 bucket holding the OpenTofu state of every stack (created once, see README)."
  type        = string
}

variable "state_kms_key_arn" {
  description = "KMS key encrypting the state bucket; CI roles need it to read and write state."
  type        = string
}

variable "create_github_oidc_provider" {
  description = "false when the account already has the token.actions.githubusercontent.com provider."
  type        = bool
  default     = true
}

variable "dns_zone_name" {
  description = "Public hosted zone below which each environment serves as <env>.<zone>; an apply role may change only its own environment's certificate validation records."
  type        = string
}
