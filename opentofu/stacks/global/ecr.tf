# One registry for all environments: an image is built once (tag = git SHA) and promoted by
# changing apps/<env>/release.yaml, never rebuilt per environment.
locals {
  ecr_repositories = toset(["task-api", "charts/task-api"])
  ecr_registry     = "${local.account_id}.dkr.ecr.${var.aws_region}.amazonaws.com"
}

data "aws_iam_policy_document" "ecr_key" {
  #checkov:skip=CKV_AWS_109: key policy; Resource "*" is this key only, the account root delegates to IAM
  #checkov:skip=CKV_AWS_111: key policy; Resource "*" is this key only, the account root delegates to IAM
  #checkov:skip=CKV_AWS_356: key policy; Resource "*" is this key only, the account root delegates to IAM
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "ecr" {
  description             = "${var.project} container images and charts"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.ecr_key.json
}

resource "aws_kms_alias" "ecr" {
  name          = "alias/${var.project}-ecr"
  target_key_id = aws_kms_key.ecr.key_id
}

resource "aws_ecr_repository" "this" {
  for_each = local.ecr_repositories

  name                 = each.key
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.ecr.arn
  }
}

# Tagged artifacts are never expired by count: the SHA running in prod may be old, and a node
# replacement would then fail to pull it. Only untagged leftovers (interrupted pushes) go.
resource "aws_ecr_lifecycle_policy" "this" {
  for_each = aws_ecr_repository.this

  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Remove untagged layers of interrupted pushes"
      selection = {
        tagStatus   = "untagged"
        countType   = "sinceImagePushed"
        countUnit   = "days"
        countNumber = 14
      }
      action = { type = "expire" }
    }]
  })
}

data "aws_iam_policy_document" "release" {
  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid = "PushOwnRepositories"
    actions = [
      "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:CompleteLayerUpload",
      "ecr:DescribeImages", "ecr:DescribeRepositories", "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload", "ecr:PutImage", "ecr:UploadLayerPart",
    ]
    resources = [for r in aws_ecr_repository.this : r.arn]
  }

  statement {
    sid       = "EncryptLayers"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.ecr.arn]
  }
}

module "release_role" {
  source = "../../modules/github-oidc-role"

  name               = "${var.project}-github-release"
  oidc_provider_arn  = local.oidc_provider_arn
  github_repository  = var.github_repository
  github_environment = "release"
  inline_policies = {
    ecr-push = data.aws_iam_policy_document.release.json
  }
}
