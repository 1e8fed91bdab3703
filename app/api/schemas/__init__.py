"""Request and response models of the HTTP API (apart from ORM and engine types)."""
