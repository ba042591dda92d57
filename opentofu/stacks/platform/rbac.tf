# Read-only Kubernetes access of the plan role (access entry group <project>:plan-readers, see
# stacks/cluster): what a pull-request plan of this stack refreshes, and the Flux and CRD reads
# an operator's `flux diff`/`flux get` needs. AmazonEKSViewPolicy covers neither CRDs nor
# Flux's API groups nor the Helm release records (Secrets), so the plan would fail on refresh.
locals {
  plan_readers_group = "${var.project}:plan-readers"
  read_verbs         = ["get", "list", "watch"]
}

resource "kubernetes_cluster_role_v1" "plan_reader" {
  metadata {
    name = "${var.project}-plan-reader"
  }

  rule {
    api_groups = [""]
    resources  = ["namespaces", "configmaps", "serviceaccounts", "services", "events"]
    verbs      = local.read_verbs
  }
  rule {
    api_groups = ["apps"]
    resources  = ["deployments", "daemonsets", "statefulsets", "replicasets"]
    verbs      = local.read_verbs
  }
  rule {
    api_groups = ["rbac.authorization.k8s.io"]
    resources  = ["clusterroles", "clusterrolebindings", "roles", "rolebindings"]
    verbs      = local.read_verbs
  }
  rule {
    api_groups = ["apiextensions.k8s.io"]
    resources  = ["customresourcedefinitions"]
    verbs      = local.read_verbs
  }
  rule {
    api_groups = ["source.toolkit.fluxcd.io"]
    resources  = ["gitrepositories", "ocirepositories", "helmrepositories", "helmcharts", "buckets", "externalartifacts"]
    verbs      = local.read_verbs
  }
  rule {
    api_groups = ["kustomize.toolkit.fluxcd.io"]
    resources  = ["kustomizations"]
    verbs      = local.read_verbs
  }
  rule {
    api_groups = ["helm.toolkit.fluxcd.io"]
    resources  = ["helmreleases"]
    verbs      = local.read_verbs
  }
  rule {
    api_groups = ["notification.toolkit.fluxcd.io"]
    resources  = ["alerts", "providers", "receivers"]
    verbs      = local.read_verbs
  }
  rule {
    api_groups = ["fluxcd.controlplane.io"]
    resources  = ["fluxinstances", "fluxreports", "resourcesets", "resourcesetinputproviders"]
    verbs      = local.read_verbs
  }
}

resource "kubernetes_cluster_role_binding_v1" "plan_reader" {
  metadata {
    name = "${var.project}-plan-reader"
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "ClusterRole"
    name      = kubernetes_cluster_role_v1.plan_reader.metadata[0].name
  }
  subject {
    kind      = "Group"
    name      = local.plan_readers_group
    api_group = "rbac.authorization.k8s.io"
  }
}

# Helm keeps each release's record in a Secret of the release's namespace: refreshing
# helm_release reads them. Only flux-system, whose Secrets are these records and the read-only
# Flux GitHub App key (worth no more than the checkout the plan job already has).
resource "kubernetes_role_v1" "plan_reader_release_records" {
  metadata {
    name      = "${var.project}-plan-reader-release-records"
    namespace = kubernetes_namespace_v1.flux_system.metadata[0].name
  }
  rule {
    api_groups = [""]
    resources  = ["secrets"]
    verbs      = local.read_verbs
  }
}

resource "kubernetes_role_binding_v1" "plan_reader_release_records" {
  metadata {
    name      = "${var.project}-plan-reader-release-records"
    namespace = kubernetes_namespace_v1.flux_system.metadata[0].name
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.plan_reader_release_records.metadata[0].name
  }
  subject {
    kind      = "Group"
    name      = local.plan_readers_group
    api_group = "rbac.authorization.k8s.io"
  }
}
