output "cluster_name" {
  description = "EKS cluster name (cluster-vars cluster_name)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "API server endpoint."
  value       = module.eks.cluster_endpoint
}

output "cluster_certificate_authority_data" {
  description = "Base64 CA bundle of the API server."
  value       = module.eks.cluster_certificate_authority_data
}

output "cluster_oidc_issuer_url" {
  description = "Service-account token issuer of the cluster (IRSA)."
  value       = module.eks.cluster_oidc_issuer_url
}

output "cluster_version" {
  description = "Kubernetes minor version running."
  value       = module.eks.cluster_version
}

output "apps_node_security_group_id" {
  description = "Security group carried by the apps nodes only; the database trusts it."
  value       = aws_security_group.apps_nodes.id
}

output "node_security_group_id" {
  description = "Security group shared by all nodes."
  value       = module.eks.node_security_group_id
}

output "secrets_kms_key_arn" {
  description = "Key encrypting Kubernetes Secrets in etcd."
  value       = module.eks.kms_key_arn
}

output "node_group_autoscaling_group_names" {
  description = "ASGs behind the managed node groups (cluster autoscaler auto-discovery)."
  value       = module.eks.eks_managed_node_groups_autoscaling_group_names
}
