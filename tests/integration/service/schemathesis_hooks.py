"""Schemathesis hooks for ``test_schemathesis.py`` (loaded through ``SCHEMATHESIS_HOOKS``):
JSONL bodies (dataset uploads) are sent as the generated text, as ``text/plain`` would be."""

from __future__ import annotations

import schemathesis

schemathesis.serializer.alias(["application/x-ndjson", "application/jsonl"], "text/plain")
