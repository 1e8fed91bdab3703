"""Hardening probes: hostile workloads against a real ``inf-engine serve``, over the public API.

Each probe is ``python -m bench.probes.<name>`` (``redos``, ``nul``, ``bomb``, ``stall``, ``sse``);
``python -m bench.probes`` runs all five and prints a summary table. See ``bench/README.md``.
"""
