"""aimw's soak: a gateway holding many slow streams in front of a fault-injecting fake
Hugging Face router, with clients that leave at random points; then what leaked, what the log
lost, and whether it stops gracefully. ``python -m bench.soak --help``; ``make soak`` runs the
long one, ``tests/soak/`` a short one in CI; bench/soak/README.md says what each run checks.

Modules: plan (exchange kinds and the fault mix), upstream and chat (the fake router), corpus
(Claude Code's requests), client and load (the clients and rounds), checks (what each answer
must be), app (the gateway with its debug hook), probe (/proc and the hook), servers (the two
processes), logcheck (the log), run (one soak), report (verdict and text).
"""
