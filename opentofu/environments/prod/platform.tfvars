environment  = "prod"
aws_region   = "eu-west-1"
state_bucket = "example-org-task-platform-tfstate"

domain            = "prod.tasks.example.com"
route53_zone_name = "tasks.example.com"
oidc_issuer_url   = "https://auth.example.com/realms/tasks"
oidc_audience     = "task-api"
github_repository = "example-org/task-platform"
