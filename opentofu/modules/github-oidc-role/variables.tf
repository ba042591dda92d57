variable "name" {
  description = "IAM role name."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the IAM OIDC provider for token.actions.githubusercontent.com."
  type        = string
}

variable "github_repository" {
  description = "owner/name of the only repository allowed to assume the role."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be a literal owner/name, without wildcards."
  }
}

variable "github_environment" {
  description = "GitHub environment whose jobs may assume the role (the token's sub claim)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+$", var.github_environment))
    error_message = "github_environment must be a literal name, without wildcards."
  }
}

variable "managed_policy_arns" {
  description = "Managed policies attached to the role."
  type        = list(string)
  default     = []
}

variable "inline_policies" {
  description = "Inline policies (name => JSON document)."
  type        = map(string)
  default     = {}
}

variable "max_session_duration" {
  description = "Longest session in seconds; a plan or apply job must finish inside it."
  type        = number
  default     = 3600
}

variable "tags" {
  description = "Tags for the role."
  type        = map(string)
  default     = {}
}
