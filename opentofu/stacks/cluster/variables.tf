variable "kubernetes_version" {
  description = "EKS minor version; upgrade one minor at a time, dev first."
  type        = string
}

variable "endpoint_public_access" {
  description = "Expose the API endpoint publicly (in addition to the private one), restricted to endpoint_public_access_cidrs."
  type        = bool
  default     = false
}

variable "endpoint_public_access_cidrs" {
  description = "Source ranges allowed on the public API endpoint (CI egress, admin VPN)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.endpoint_public_access_cidrs : can(cidrhost(c, 0)) && !endswith(c, "/0")])
    error_message = "endpoint_public_access_cidrs must be CIDR ranges, never /0."
  }
}

variable "node_pools" {
  description = "Instance types and sizes of the managed node groups system, apps and runners."
  type = map(object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
    desired_size   = number
    disk_size_gib  = optional(number, 50)
  }))

  validation {
    condition     = alltrue([for k in ["system", "apps", "runners"] : contains(keys(var.node_pools), k)]) && length(var.node_pools) == 3
    error_message = "node_pools must define exactly system, apps and runners."
  }

  validation {
    condition     = alltrue([for p in values(var.node_pools) : p.min_size <= p.desired_size && p.desired_size <= p.max_size && p.max_size > 0])
    error_message = "Every pool needs min_size <= desired_size <= max_size and a positive max_size."
  }

  validation {
    condition     = try(var.node_pools.runners.min_size == 0, false)
    error_message = "The runners pool scales from zero: min_size must be 0."
  }
}

variable "cluster_admin_role_arns" {
  description = "Human administrator roles (SSO) granted cluster-admin through access entries."
  type        = list(string)
  default     = []
}

variable "log_retention_days" {
  description = "Retention of the control-plane log group."
  type        = number
  default     = 365
}
