"""The only place that talks to DynamoDB (pynamodb models and repositories)."""
