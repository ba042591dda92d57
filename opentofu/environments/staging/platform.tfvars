environment  = "staging"
aws_region   = "eu-west-1"
state_bucket = "example-org-task-platform-tfstate"

domain            = "staging.tasks.example.com"
route53_zone_name = "tasks.example.com"
oidc_issuer_url   = "https://auth.example.com/realms/tasks"
oidc_audience     = "task-api"
github_repository = "example-org/task-platform"

# The read-only Flux GitHub App (docs/runbooks/bootstrap-environment.md); its private key comes
# from the GitHub environment's secret FLUX_GITHUB_APP_PRIVATE_KEY at apply time.
flux_github_app_id              = "1234567"
flux_github_app_installation_id = "87654321"
