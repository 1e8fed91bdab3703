"""Optimization runs and evaluations, service side: the request specs, their checks against
what exists, the seeded dataset split and the dry-run projection (pure: no database, no HTTP)."""
