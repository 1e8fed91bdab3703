"""The response ledger in the service: the engine's ledger on the database, per tenant."""
