environment  = "prod"
aws_region   = "eu-west-1"
state_bucket = "example-org-task-platform-tfstate"

engine_version        = "17.6"
instance_class        = "db.m7g.large"
multi_az              = true
deletion_protection   = true
backup_retention_days = 30
