"""How long the translator and SSE fuzzers run.

CI (the default): each property gets the examples its test names, derandomized (the same
examples on every run, so a red CI run is reproducible with the same command) and without
hypothesis' example database (no example is saved or replayed; .hypothesis/ only caches
Unicode tables and the code's constants). All of them together (``pytest tests/fuzz``) take
about 9 s of CPU: 13-19 s of wall time on a 2-core machine with a load average of 5 to 6.
At these sizes each request bug the fuzzers found (OpenAI's 4 stop sequences and
40-character tool call ids, Gemini's largest maxOutputTokens and positive topK) is found
again when its fix is undone.

``AIMW_FUZZ=long`` (the variable the HTTP fuzzers in tests/fuzz_http read too): 100 times
the examples, randomized, still database-less; a failure prints the blob that replays it
(``@reproduce_failure``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG = os.environ.get("AIMW_FUZZ") == "long"
LONG_FACTOR = 100


def fuzz(examples: int) -> settings:
    """The hypothesis settings of one property: ``examples`` in CI, LONG_FACTOR times more when long."""
    return settings(
        max_examples=examples * LONG_FACTOR if LONG else examples,
        derandomize=not LONG,
        database=None,
        deadline=None,
        print_blob=LONG,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
