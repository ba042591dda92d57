variable "kubernetes_version" {
  description = "EKS minor version; upgrade one minor at a time, dev first (addons.tf needs the minor's addon builds)."
  type        = string
}

variable "endpoint_public_access_sources" {
  description = <<-EOT
    Named source ranges admitted on the public API endpoint (the private endpoint serves the
    nodes). `tofu-runners` is the static egress range of the GitHub-hosted runner group that
    runs OpenTofu (repository variable TOFU_RUNNER): the platform stage talks to the API from
    there. Add the operators' VPN egress as e.g. `operators-vpn`. Never /0.
  EOT
  type        = map(string)

  validation {
    condition     = contains(keys(var.endpoint_public_access_sources), "tofu-runners")
    error_message = "endpoint_public_access_sources must name the OpenTofu runners' range as tofu-runners."
  }

  validation {
    condition     = alltrue([for c in values(var.endpoint_public_access_sources) : can(cidrhost(c, 0)) && tonumber(split("/", c)[1]) >= 16])
    error_message = "endpoint_public_access_sources must be CIDR ranges of /16 or narrower, never /0."
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
  description = <<-EOT
    Operators' roles (IAM Identity Center permission-set roles, ARN without the
    aws-reserved/sso.amazonaws.com/ path) granted cluster-admin through access entries: with
    authentication_mode API nobody else can run kubectl or flux against the cluster.
  EOT
  type        = list(string)

  validation {
    condition     = length(var.cluster_admin_role_arns) > 0 && alltrue([for a in var.cluster_admin_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_-]+$", a))])
    error_message = "cluster_admin_role_arns must name at least one role, by ARN without a path."
  }
}

variable "log_retention_days" {
  description = "Retention of the control-plane log group."
  type        = number
  default     = 365
}
