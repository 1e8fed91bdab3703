"""Request-side services: what an HTTP request asks of the service, answered from the database."""
