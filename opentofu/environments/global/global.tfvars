aws_region        = "eu-west-1"
github_repository = "example-org/task-platform"
environments      = ["dev", "staging", "prod"]
state_bucket      = "example-org-task-platform-tfstate"
dns_zone_name     = "tasks.example.com"
# Key ARN (not an alias: IAM matches keys by ARN) created with the state bucket, see README.
state_kms_key_arn           = "arn:aws:kms:eu-west-1:111111111111:key/00000000-0000-4000-8000-000000000000"
create_github_oidc_provider = true
