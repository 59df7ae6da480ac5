"""Relata benchmark: data generator, bare reference app and load driver (not used by tests)."""
