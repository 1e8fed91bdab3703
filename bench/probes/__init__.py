"""Hardening probes: hostile workloads against a real ``inf-engine serve``, over the public API.

Each probe is ``python -m bench.probes.<name>`` (``redos``, ``nul``, ``bomb``, ``stall``);
``python -m bench.probes`` runs all four and prints a summary table. See ``bench/README.md``.
"""
