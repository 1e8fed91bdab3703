"""The op table (:data:`OPS`) and the per-op functions it points at."""
