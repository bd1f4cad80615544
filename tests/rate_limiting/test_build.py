"""Where the rate_limiting section comes from (AIMW_RATE_LIMITING's file, the config file,
AIMW_REDIS_URL), the configuration errors named by field, and where the layer sits in the
standard stacks: under ClientAuth, so a consumer's limits apply and a keyless client is
refused before any count."""

from __future__ import annotations

import json
import textwrap

import httpx
import pytest

from aimw import Settings, config_gateway, translated_gateway
from aimw.config import load_config
from aimw.middleware.client_auth import ClientAuthMiddleware
from aimw.middleware.client_guard import ClientGuard
from aimw.middleware.rate_limit import RateLimitMiddleware
from aimw.providers.huggingface import HUGGINGFACE
from aimw.rate_limiting import LocalCounters, RedisCounters, load_rate_limiting, rate_limited
from aimw.settings import ConfigurationError
from tests.asgi_helpers import call, http_scope

pytestmark = pytest.mark.anyio

ALICE_KEY = "aimw-alice-" + "5e0d7c3b9a1f2468"
HF_SECRET = "hf_" + "rate" * 6
SECTION = """\
rate_limiting:
  llm_providers:
    - name: huggingface
      limit: [100]
      window_size: [60]
"""
BODY = b'{"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}'


@pytest.fixture
def write(tmp_path):
    def write(text: str, name: str = "limits.yaml") -> str:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write


def problem(path: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load_rate_limiting(path, environ or {})
    message = str(caught.value)
    assert message.startswith(f"aimw: {path}: ")
    return message.removeprefix(f"aimw: {path}: ")


def test_the_file_holds_a_rate_limiting_section_in_kongs_names(write):
    path = write(
        SECTION
        + """\
  identifier: header
  header_name: X-Team
  window_type: fixed
  strategy: redis
  redis: {host: redis.internal, port: 6380, password: "${REDIS_PASSWORD}", database: 2}
  tokens_count_strategy: prompt_tokens
  sync_rate: 0                          # Kong's redis example's: accepted
  dictionary_name: kong_rate_limiting_counters
consumers:
  - username: alice
    keyauth_credentials: [{key: whatever}]
"""
    )
    section = load_rate_limiting(path, {"REDIS_PASSWORD": "s3cr3t-redis-pass"})
    assert (section.identifier, section.header_name, section.window_type) == ("header", "X-Team", "fixed")
    assert section.redis is not None and section.redis.password == "s3cr3t-redis-pass"
    assert "s3cr3t" not in repr(section)  # the password never shows
    assert section.llm_providers[0].limit == (100,)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            SECTION + "  window_type: rolling\n",
            "rate_limiting.window_type: expected one of fixed, sliding; got 'rolling'",
        ),
        (SECTION + "  identifier: header\n", "rate_limiting.header_name: required with identifier: header"),
        (SECTION + "  redis: {host: r}\n", "rate_limiting.redis: given, but strategy is local (set strategy: redis)"),
        (SECTION + "  windw_type: fixed\n", "rate_limiting.windw_type: unknown field"),
        (
            SECTION.replace("[60]", "[60, 3600]"),
            "rate_limiting.llm_providers[0].limit: expected one limit per window_size",
        ),
        (SECTION.replace("[100]", "[0]"), "rate_limiting.llm_providers[0].limit[0]: expected float > 0.0"),
        (SECTION.replace("[60]", "[0]"), "rate_limiting.llm_providers[0].window_size[0]: expected int >= 1"),
        (SECTION + "  consumer_limits: {alice: {}}\n", "rate_limiting.consumer_limits[...].llm_providers: required"),
        (SECTION + "  sync_rate: 10\n", "rate_limiting.sync_rate: expected 0 or -1: aimw counts every request"),
        (SECTION + "  error_code: 503\n", "rate_limiting.error_code: expected one of 429; got 503"),
        ("rate_limiting: {}\nlimits: 3\n", "limits: unknown field (expected rate_limiting, and consumers)"),
        ("consumers: []\n", "expected a mapping with a rate_limiting section"),
        ("rate_limiting: [\n", "not valid YAML"),
    ],
)
def test_problems_are_named_by_their_field(write, text, expected):
    assert problem(write(text)).startswith(expected)


def test_an_unset_variable_is_named_never_its_value(write):
    path = write(SECTION + "  strategy: redis\n  redis: {host: r, password: '${REDIS_PASSWORD}'}\n")
    assert (
        problem(path)
        == "rate_limiting.redis.password: the environment variable REDIS_PASSWORD is not set (or is empty)"
    )


def test_a_missing_file_is_named():
    with pytest.raises(ConfigurationError, match=r"cannot read AIMW_RATE_LIMITING's file /nonexistent\.yaml"):
        load_rate_limiting("/nonexistent.yaml")


def inner(scope, receive, send):
    raise AssertionError("not called")


def test_without_a_section_there_is_no_layer():
    assert rate_limited(inner, providers=["huggingface"], environ={}) is inner


def test_the_environments_section_builds_the_layer(write):
    app = rate_limited(inner, providers=["huggingface"], environ={"AIMW_RATE_LIMITING": write(SECTION)})
    assert isinstance(app, RateLimitMiddleware)
    assert isinstance(app.counters, LocalCounters)
    redis_section = SECTION + "  strategy: redis\n"
    app = rate_limited(
        inner,
        providers=["huggingface"],
        environ={"AIMW_RATE_LIMITING": write(redis_section), "AIMW_REDIS_URL": "redis://:pw-9f8e7d6c@10.1.2.3:6390/1"},
    )
    assert isinstance(app, RateLimitMiddleware) and isinstance(app.counters, RedisCounters)
    assert app.counters.where == "10.1.2.3:6390"  # what log lines name: never the password


@pytest.mark.parametrize(
    ("extra", "environ", "expected"),
    [
        ("", {"AIMW_REDIS_URL": "redis://r:6379"}, "AIMW_REDIS_URL is set, but rate_limiting.strategy is local"),
        ("  strategy: redis\n", {}, "strategy redis needs rate_limiting.redis or AIMW_REDIS_URL"),
        (
            "  strategy: redis\n  redis: {host: r}\n",
            {"AIMW_REDIS_URL": "redis://r:6379"},
            "rate_limiting.redis and AIMW_REDIS_URL are both set",
        ),
        ("  strategy: redis\n", {"AIMW_REDIS_URL": "http://r:6379"}, "AIMW_REDIS_URL: expected redis://"),
        ("  tokens_count_strategy: cost\n", {}, "tokens_count_strategy cost needs prices"),
    ],
)
def test_what_the_layer_cannot_run_with_stops_the_start(write, extra, environ, expected):
    environ = {"AIMW_RATE_LIMITING": write(SECTION + extra), **environ}
    with pytest.raises(ConfigurationError, match=expected):
        rate_limited(inner, providers=["huggingface"], environ=environ)


def test_a_provider_the_gateway_does_not_serve_is_refused(write):
    with pytest.raises(
        ConfigurationError, match=r"'huggingface' is not a provider of this gateway \(it serves openai\)"
    ):
        rate_limited(inner, providers=["openai"], environ={"AIMW_RATE_LIMITING": write(SECTION)})


def test_aimw_redis_url_needs_a_section():
    with pytest.raises(ConfigurationError, match="AIMW_REDIS_URL is set, but no rate_limiting section uses it"):
        rate_limited(inner, providers=["huggingface"], environ={"AIMW_REDIS_URL": "redis://r:6379"})


# ---------------------------------------------------------------- in the standard stacks


COMPLETION = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 60, "completion_tokens": 20, "total_tokens": 80},
    }
).encode()


class Provider(httpx.AsyncBaseTransport):
    """Stands in for the network: a chat completion that used 60 + 20 tokens, streamed as a
    provider's would be."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=httpx.ByteStream(COMPLETION))


def request(*headers: tuple[bytes, bytes]):
    return http_scope(headers=[(b"content-type", b"application/json"), *headers], body=BODY)


async def test_the_layer_sits_under_client_auth_and_limits_each_consumer(write, tmp_path, monkeypatch):
    consumers = write(f"consumers:\n  - username: alice\n    keyauth_credentials: [{{key: {ALICE_KEY}}}]\n", "c.yaml")
    monkeypatch.setenv("AIMW_RATE_LIMITING", write(SECTION))
    settings = Settings(consumers_path=consumers, log_path=str(tmp_path / "aimw.log"))
    app = translated_gateway(HUGGINGFACE, settings, secret=HF_SECRET, transport=Provider())
    layer = app
    while not isinstance(layer, ClientAuthMiddleware):
        layer = layer.app
    assert isinstance(layer.app, RateLimitMiddleware) and isinstance(layer.app.app, ClientGuard)

    alice = (b"x-api-key", ALICE_KEY.encode())
    first, second = await call(app, request(alice), [BODY]), await call(app, request(alice), [BODY])
    assert (first.status, second.status) == (200, 200)
    assert second.header(b"x-ai-ratelimit-remaining-minute-huggingface") == b"20"
    assert (await call(app, request(alice), [BODY])).status == 429  # 160 tokens used
    assert (await call(app, request((b"x-api-key", b"wrong-key-000000")), [BODY])).status == 401  # not 429


CONFIG = """\
llm_format: anthropic
targets:
  - model:
      provider: huggingface
      name: big-model
      options: {input_cost: 2.0, output_cost: 10.0}
rate_limiting:
  llm_providers:
    - name: huggingface
      limit: [0.0003]
      window_size: [86400]
  tokens_count_strategy: cost
"""


async def test_the_config_file_section_caps_spend_at_its_targets_prices(write, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_KEY", HF_SECRET)
    config = load_config(write(CONFIG, "gateway.yaml"), {})
    app = config_gateway(config, Settings(log_path=str(tmp_path / "aimw.log")), transport=Provider())
    first = await call(app, request(), [BODY])  # 60 * 2 / 1e6 + 20 * 10 / 1e6 = 0.00032 spent
    assert first.status == 200, first.body
    assert first.header(b"x-ai-ratelimit-limit-day-huggingface") == b"0.0003"
    refused = await call(app, request(), [BODY])
    assert refused.status == 429
    assert json.loads(refused.body)["error"]["type"] == "rate_limit_error"


def test_the_config_file_and_the_environment_do_not_both_give_a_section(write, tmp_path, monkeypatch):
    config = load_config(write(CONFIG, "gateway.yaml"), {})
    monkeypatch.setenv("AIMW_RATE_LIMITING", write(SECTION))
    with pytest.raises(ConfigurationError, match="keep one"):
        config_gateway(config, Settings(log_path=str(tmp_path / "aimw.log")))


README_EXAMPLE = """\
rate_limiting:
  identifier: consumer                  # Kong's default: each consumer's own counters
  strategy: redis                       # shared by every worker and gateway (local: per worker)
  redis: {host: redis.internal, password: "${REDIS_PASSWORD}"}   # or AIMW_REDIS_URL=redis://...
  llm_providers:
    - name: huggingface                 # whose answers count (Kong's provider_name)
      limit: [200000]                   # tokens (tokens_count_strategy: total_tokens) ...
      window_size: [60]                 # ... a minute (seconds; several windows allowed)
    - name: huggingface
      tokens_count_strategy: cost       # aimw's: this entry counts spend
      limit: [5]                        # $5 ...
      window_size: [86400]              # ... a day
  model_costs:                          # aimw's: per million prompt / completion tokens
    "meta-llama/*": {input_cost: 0.6, output_cost: 0.6}
  consumer_limits:                      # aimw's: alice's own windows instead of the above
    alice:
      llm_providers:
        - {name: huggingface, limit: [1000000], window_size: [60]}
"""


def test_the_readme_example_loads_and_builds(write):
    """README, "Team gateway": the example as printed there."""
    environ = {"AIMW_RATE_LIMITING": write(README_EXAMPLE), "REDIS_PASSWORD": "redis-" + "pw-6a5b4c3d"}
    app = rate_limited(inner, providers=["huggingface"], environ=environ)
    assert isinstance(app, RateLimitMiddleware) and isinstance(app.counters, RedisCounters)
    assert [window.label for window in app.limits.windows] == ["minute-huggingface", "day-huggingface-cost"]
    assert app.limits.prices.of("meta-llama/Llama-3.3-70B-Instruct") == (0.6, 0.6)
    assert [window.limit for window in app.limits.consumer_windows["alice"]] == [1000000]
