environment  = "staging"
aws_region   = "eu-west-1"
state_bucket = "example-org-task-platform-tfstate"

engine_version        = "17.6"
instance_class        = "db.t4g.medium"
multi_az              = false
deletion_protection   = true
backup_retention_days = 14
