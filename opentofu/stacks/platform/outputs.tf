output "cluster_vars" {
  description = "Content of ConfigMap flux-system/cluster-vars."
  value       = local.cluster_vars
}

output "flux_repository_files" {
  description = "Files Flux bootstrap manages in clusters/<env>/flux-system."
  value       = keys(flux_bootstrap_git.this.repository_files)
}
