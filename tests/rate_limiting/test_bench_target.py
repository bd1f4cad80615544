"""The bench's aimw-limits targets run recipes.huggingface:app with files the gateway takes:
a consumer holding the load generator's key, and a limit nothing reaches."""

from __future__ import annotations

import hashlib

from aimw.config import keyring, load_consumers
from aimw.rate_limiting import load_rate_limiting
from bench.targets import BENCH_KEY, LIMITS_NEVER_REACHED, limits_files


def test_the_limits_target_files_admit_the_load_generators_key_under_a_limit_never_reached(tmp_path):
    for strategy in ("local", "redis"):
        env = limits_files(tmp_path, f"aimw-limits-{strategy}", strategy)
        section = load_rate_limiting(env["AIMW_RATE_LIMITING"], {})
        assert section.strategy == strategy
        assert section.llm_providers[0].name == "huggingface"
        assert section.llm_providers[0].limit == (LIMITS_NEVER_REACHED,)
        consumers = keyring(load_consumers(env["AIMW_CONSUMERS"]))
        assert consumers[hashlib.sha256(BENCH_KEY.encode()).digest()].username == "bench"
