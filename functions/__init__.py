"""Deployable function entrypoints (functions-framework targets); thin adapters, no logic."""
