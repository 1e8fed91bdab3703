"""``python -m app``: the ``inf-engine`` command."""

from app.cli import main

main()
