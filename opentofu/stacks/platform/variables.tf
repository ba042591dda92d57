variable "domain" {
  description = "DNS name under which the environment serves (cluster-vars domain), e.g. dev.tasks.example.com."
  type        = string
}

variable "route53_zone_name" {
  description = "Public hosted zone holding domain; the ACM certificate is validated in it."
  type        = string
}

variable "oidc_issuer_url" {
  description = "Issuer whose tokens the Task API accepts (cluster-vars oidc_issuer_url)."
  type        = string

  validation {
    condition     = startswith(var.oidc_issuer_url, "https://")
    error_message = "oidc_issuer_url must be an https URL."
  }
}

variable "oidc_audience" {
  description = "Audience the Task API requires in tokens (cluster-vars oidc_audience)."
  type        = string
}

variable "github_repository" {
  description = "owner/name of the repository Flux reconciles."
  type        = string
  default     = "example-org/task-platform"
}

variable "flux_github_app_id" {
  description = "App ID of the read-only Flux GitHub App (Contents: read on this repository)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+$", var.flux_github_app_id))
    error_message = "flux_github_app_id is the numeric App ID."
  }
}

variable "flux_github_app_installation_id" {
  description = "Installation ID of the Flux GitHub App on the repository's owner."
  type        = string

  validation {
    condition     = can(regex("^[0-9]+$", var.flux_github_app_installation_id))
    error_message = "flux_github_app_installation_id is the numeric installation ID."
  }
}

variable "flux_github_app_private_key" {
  description = <<-EOT
    PEM private key of the Flux GitHub App, as TF_VAR_flux_github_app_private_key from the
    GitHub environment <env> (apply jobs only; plans run without it). Ephemeral and written to a
    write-only attribute: it is in neither the state nor a plan file.
  EOT
  type        = string
  sensitive   = true
  ephemeral   = true
  default     = null
}

variable "flux_notifications_slack_webhook" {
  description = <<-EOT
    Slack incoming-webhook URL of the environment's alert channel, for Flux's failure
    notifications (docs/decisions/0071), as TF_VAR_flux_notifications_slack_webhook from the
    GitHub environment <env> (apply jobs only). Ephemeral and written to a write-only attribute.
  EOT
  type        = string
  sensitive   = true
  ephemeral   = true
  default     = null
}

variable "flux_notifications_webhook_revision" {
  description = "Increment to write a new Slack webhook into the cluster (the write-only value is not compared)."
  type        = number
  default     = 1
}

variable "flux_github_app_key_revision" {
  description = "Increment to write a new Flux GitHub App key into the cluster (the write-only value is not compared)."
  type        = number
  default     = 1
}
