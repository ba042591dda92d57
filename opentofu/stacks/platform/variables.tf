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

variable "flux_git_branch" {
  description = "Branch Flux follows."
  type        = string
  default     = "main"
}

variable "flux_git_token" {
  description = <<-EOT
    Token Flux uses to read the repository (and, once, to commit clusters/<env>/flux-system).
    Passed as TF_VAR_flux_git_token from a GitHub environment secret; provider configuration is
    never written to the state.
  EOT
  type        = string
  sensitive   = true
  ephemeral   = true
}
