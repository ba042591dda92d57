output "cluster_vars" {
  description = "Content of ConfigMap flux-system/cluster-vars."
  value       = local.cluster_vars
}

output "flux_sync" {
  description = "What the FluxInstance syncs (URL, ref, path, credential Secret)."
  value       = local.flux_instance.spec.sync
}
