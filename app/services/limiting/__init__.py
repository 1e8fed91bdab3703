"""Rate budgets and concurrency leases shared by every process: Redis and Postgres stores."""
