"""Pipelines: what one function invocation does, end to end (event source and sensor)."""
