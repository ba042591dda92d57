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
    # The CAs that sign RDS server certificates, for task-api's sslmode=verify-full
    # (apps/base/task-api/rds-ca-bundle.yaml; docs/decisions/0102). base64, so that the
    # multi-line PEM survives Flux's substitution as one value.
    rds_ca_bundle_base64 = base64encode(data.http.rds_ca_bundle.response_body)
  }
}

# Amazon RDS's global CA bundle (every region's root and intermediate CAs), read at every plan:
# when AWS adds a CA, the next apply updates cluster-vars and Flux the ConfigMap, and task-api
# re-reads the mounted bundle for each new connection, so no restart is needed.
data "http" "rds_ca_bundle" {
  url = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"

  lifecycle {
    postcondition {
      condition     = self.status_code == 200 && strcontains(self.response_body, "-----BEGIN CERTIFICATE-----")
      error_message = "The Amazon RDS CA bundle could not be fetched: task-api could not verify the database."
    }
  }
}

resource "kubernetes_namespace_v1" "flux_system" {
  metadata {
    name = "flux-system"
  }

  # The operator labels its namespace when it installs Flux.
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

# Flux is installed by the Flux Operator from a FluxInstance; nothing is committed to the
# repository and no credential that can push is handed to the cluster (docs/decisions/0081).
# The FluxInstance is the one committed in clusters/<env>/flux-system/flux-instance.yaml: the
# same file Flux then reconciles from Git, so Flux upgrades are pull requests to that file.
locals {
  flux_instance_file = "${path.module}/../../../clusters/${var.environment}/flux-system/flux-instance.yaml"
  flux_instance      = yamldecode(file(local.flux_instance_file))

  # Charts of the Flux Operator and of its FluxInstance, released together.
  flux_operator_chart_version = "0.58.1" # renovate: datasource=docker depName=ghcr.io/controlplaneio-fluxcd/charts/flux-operator
  flux_charts_repository      = "oci://ghcr.io/controlplaneio-fluxcd/charts"

  # Flux's controllers run on the tainted system nodes.
  system_pool_scheduling = {
    tolerations  = [{ key = "CriticalAddonsOnly", operator = "Exists", effect = "NoSchedule" }]
    nodeSelector = { "node-pool" = "system" }
  }
}

# Read-only credential of the Flux GitHub App (Contents: read on this repository only): Flux
# clones over HTTPS with short-lived installation tokens it mints from it. Write-only: the
# private key never enters the state or a plan file; bump the revision to rotate it.
resource "kubernetes_secret_v1" "flux_git" {
  metadata {
    name      = local.flux_instance.spec.sync.pullSecret
    namespace = kubernetes_namespace_v1.flux_system.metadata[0].name
  }

  data_wo = {
    githubAppID             = var.flux_github_app_id
    githubAppInstallationID = var.flux_github_app_installation_id
    githubAppPrivateKey     = var.flux_github_app_private_key
  }
  data_wo_revision = var.flux_github_app_key_revision
}

# Where Flux's failure notifications go (infrastructure/notifications, applied with no
# dependency on any platform layer): written here, before Flux starts, because alerts about a
# platform that does not come up cannot wait for External Secrets to deliver their webhook.
resource "kubernetes_secret_v1" "flux_notifications_slack" {
  metadata {
    name      = "flux-notifications-slack"
    namespace = kubernetes_namespace_v1.flux_system.metadata[0].name
  }

  data_wo = {
    address = var.flux_notifications_slack_webhook
  }
  data_wo_revision = var.flux_notifications_webhook_revision
}

resource "helm_release" "flux_operator" {
  name       = "flux-operator"
  namespace  = kubernetes_namespace_v1.flux_system.metadata[0].name
  repository = local.flux_charts_repository
  chart      = "flux-operator"
  version    = local.flux_operator_chart_version
  values     = [yamlencode(local.system_pool_scheduling)]

  wait            = true
  timeout         = 600
  atomic          = true
  cleanup_on_fail = true
}

resource "helm_release" "flux_instance" {
  # Pod Identity injects credentials when a pod is admitted: every association must exist before
  # Flux starts source-controller and installs the controllers that use them.
  depends_on = [
    helm_release.flux_operator,
    kubernetes_secret_v1.flux_git,
    kubernetes_secret_v1.flux_notifications_slack,
    kubernetes_config_map_v1.cluster_vars,
    module.flux_source_controller_identity,
    module.external_secrets_identity,
    module.aws_lb_controller_identity,
    module.cluster_autoscaler_identity,
    module.task_api_identity,
  ]

  name       = local.flux_instance.metadata.name
  namespace  = kubernetes_namespace_v1.flux_system.metadata[0].name
  repository = local.flux_charts_repository
  chart      = "flux-instance"
  version    = local.flux_operator_chart_version
  values     = [yamlencode({ instance = local.flux_instance.spec })]

  wait            = true
  timeout         = 900
  atomic          = true
  cleanup_on_fail = true

  lifecycle {
    precondition {
      condition = (
        local.flux_instance.spec.sync.url == "https://github.com/${var.github_repository}.git" &&
        local.flux_instance.spec.sync.path == "clusters/${var.environment}" &&
        local.flux_instance.metadata.namespace == "flux-system"
      )
      error_message = "clusters/<env>/flux-system/flux-instance.yaml must sync https://github.com/<github_repository>.git at clusters/<env>, in flux-system."
    }
  }
}
