"""Repositories: every SQL statement of the service, grouped by table.

Each function takes the caller's ``AsyncSession`` first, adds statements to its unit of work and
returns ORM objects or small dataclasses. None of them commits: the caller (a request, a runner
step) does, so several calls form one transaction.
"""
