# EKS addon builds, pinned per Kubernetes minor: an environment moves to new builds when its
# kubernetes_version moves (dev first) or when a pull request bumps a line below. Renovate keeps
# them current (datasource aws-eks-addon: each line's comment is the addon filter its custom
# regex manager passes as packageName).
locals {
  addon_builds = {
    "1.34" = {
      "vpc-cni"                = "v1.20.4-eksbuild.1" # renovate: eksAddonsFilter={"addonName":"vpc-cni","kubernetesVersion":"1.34"}
      "eks-pod-identity-agent" = "v1.3.9-eksbuild.3"  # renovate: eksAddonsFilter={"addonName":"eks-pod-identity-agent","kubernetesVersion":"1.34"}
      "kube-proxy"             = "v1.34.1-eksbuild.2" # renovate: eksAddonsFilter={"addonName":"kube-proxy","kubernetesVersion":"1.34"}
      "coredns"                = "v1.12.4-eksbuild.1" # renovate: eksAddonsFilter={"addonName":"coredns","kubernetesVersion":"1.34"}
      "aws-ebs-csi-driver"     = "v1.51.1-eksbuild.1" # renovate: eksAddonsFilter={"addonName":"aws-ebs-csi-driver","kubernetesVersion":"1.34"}
    }
  }
  addon_versions = local.addon_builds[var.kubernetes_version]

  # The VPC CNI enforces NetworkPolicies only with its network policy agent switched on; without
  # it every NetworkPolicy in the Flux tree is accepted by the API server and does nothing.
  vpc_cni_configuration = {
    enableNetworkPolicy = "true"
    nodeAgent = {
      enablePolicyEventLogs = "false"
    }
  }
}
