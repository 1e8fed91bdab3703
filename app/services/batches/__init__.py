"""The OpenAI-compatible Batch API: files, batches (a run kind), their lines and views."""
