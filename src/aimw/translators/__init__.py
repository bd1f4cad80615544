"""Wire-format translators. Anthropic Messages is the hub; each other module translates to
and from it directly: pure functions and per-stream state objects, no I/O."""
