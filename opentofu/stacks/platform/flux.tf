# Values the Flux tree substitutes (postBuild.substituteFrom: ConfigMap cluster-vars). Written
# before Flux starts, so the first reconciliation already finds them.
locals {
  cluster_vars = {
    cluster_name                = local.cluster.cluster_name
    environment                 = var.environment
    aws_region                  = var.aws_region
    aws_account_id              = data.aws_caller_identity.current.account_id
    domain                      = var.domain
    ecr_registry                = local.global.ecr_registry
    vpc_id                      = local.network.vpc_id
    vpc_cidr                    = local.network.vpc_cidr
    task_api_role_arn           = module.task_api_identity.iam_role_arn
    external_secrets_role_arn   = module.external_secrets_identity.iam_role_arn
    aws_lb_controller_role_arn  = module.aws_lb_controller_identity.iam_role_arn
    cluster_autoscaler_role_arn = module.cluster_autoscaler_identity.iam_role_arn
    # RDS-managed secret (JSON keys username, password); the ExternalSecret assembles
    # DATABASE_URL from it and db_host/db_port/db_name.
    db_secret_name      = local.database.db_master_secret_arn
    db_host             = local.database.db_host
    db_port             = tostring(local.database.db_port)
    db_name             = local.database.db_name
    acm_certificate_arn = aws_acm_certificate_validation.environment.certificate_arn
    oidc_issuer_url     = var.oidc_issuer_url
    oidc_audience       = var.oidc_audience
  }
}

resource "kubernetes_namespace_v1" "flux_system" {
  metadata {
    name = "flux-system"
  }

  # Flux labels its own namespace on bootstrap.
  lifecycle {
    ignore_changes = [metadata[0].labels, metadata[0].annotations]
  }
}

resource "kubernetes_config_map_v1" "cluster_vars" {
  metadata {
    name      = "cluster-vars"
    namespace = kubernetes_namespace_v1.flux_system.metadata[0].name
  }

  data = local.cluster_vars
}

resource "flux_bootstrap_git" "this" {
  # Pod Identity injects credentials when a pod is admitted: every association must exist before
  # bootstrap starts source-controller and Flux installs the controllers that use them.
  depends_on = [
    kubernetes_config_map_v1.cluster_vars,
    module.flux_source_controller_identity,
    module.external_secrets_identity,
    module.aws_lb_controller_identity,
    module.cluster_autoscaler_identity,
    module.task_api_identity,
  ]

  path = "clusters/${var.environment}"
  # Controller manifests come from the pinned provider build, not a download at apply time.
  embedded_manifests = true
  # Flux may run on the tainted system nodes.
  toleration_keys = ["CriticalAddonsOnly"]
  network_policy  = true
  interval        = "1m0s"
  # Bootstrap writes clusters/<env>/flux-system/kustomization.yaml itself; handing it the
  # committed file keeps the kustomize-controller hardening patches instead of a bare default.
  kustomization_override = file("${path.module}/../../../clusters/${var.environment}/flux-system/kustomization.yaml")
}
