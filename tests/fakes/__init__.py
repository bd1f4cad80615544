"""Fake providers for end-to-end tests: real loopback HTTP servers that check requests
the way the real provider does and answer from a scripted queue."""
