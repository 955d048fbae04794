"""Unit tests of knevents.spec."""
