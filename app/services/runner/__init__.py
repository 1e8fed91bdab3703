"""The runner wing: claiming runs with a lease, running them, writing results, sending webhooks."""
