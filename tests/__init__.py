"""aimw's test suite, a package so that its modules import each other as ``tests.…``
(pytest runs from the repository root; pyproject.toml puts the root on sys.path)."""
