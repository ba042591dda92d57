output "github_oidc_provider_arn" {
  description = "IAM OIDC provider for GitHub Actions."
  value       = local.oidc_provider_arn
}

output "plan_role_arns" {
  description = "Repository variable AWS_PLAN_ROLE_ARN per GitHub environment <env>-plan."
  value       = { for env, role in module.plan_role : env => role.arn }
}

output "apply_role_arns" {
  description = "Repository variable AWS_APPLY_ROLE_ARN per GitHub environment <env>."
  value       = { for env, role in module.apply_role : env => role.arn }
}

output "release_role_arn" {
  description = "Repository variable AWS_RELEASE_ROLE_ARN (GitHub environment release)."
  value       = module.release_role.arn
}

output "ecr_registry" {
  description = "Repository variable ECR_REGISTRY."
  value       = local.ecr_registry
}

output "ecr_repository_urls" {
  description = "Image and chart repositories."
  value       = { for name, r in aws_ecr_repository.this : name => r.repository_url }
}

output "ecr_repository_arns" {
  description = "Image and chart repositories by name; environments grant pulls on them."
  value       = { for name, r in aws_ecr_repository.this : name => r.arn }
}

output "workload_boundary_arns" {
  description = "Permissions boundary every role of an environment's stacks must carry."
  value       = { for env, p in aws_iam_policy.workload_boundary : env => p.arn }
}
