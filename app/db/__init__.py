"""The database layer: all SQL of the service lives here (DESIGN §2, §6).

- ``base``, ``models``: the declarative base, portable column types and the tables.
- ``session``: engines (Postgres pool, SQLite pragmas), session factories, readiness ping.
- ``dialects``: every Postgres/SQLite difference (claiming, upserts, migration options).
- ``repositories``: statement builders per table; they never commit, the caller's unit of work does.
- ``migrate``: Alembic upgrade/downgrade/current/heads from code.
"""
