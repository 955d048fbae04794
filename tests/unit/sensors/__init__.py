"""Unit tests of the pure sensor engine (knevents.sensors)."""
