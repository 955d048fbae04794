"""Conformance tests: the upstream Argo Events corpus and the seed documents."""
