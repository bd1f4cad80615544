"""The HTTP surface fuzzed and slowed down against real gateway processes (issue 11)."""
