"""The gateways the HTTP fuzzers and slow clients talk to: real Hypercorn processes
(``hypercorn --config recipes/hypercorn.toml``, tests.e2e.harness) serving recipes.huggingface
(translated), recipes.anthropic (pass-through) and recipes.config (round-robin over a Hugging
Face target and an Anthropic one), each in front of fake providers on loopback that check what
the real provider checks and answer every request they accept (a stream when it asks for one).

After every test each gateway must still be up, and its output must hold no traceback and no
"unexpected failure" line (aimw's catch-all) since the test began.

``AIMW_FUZZ=long`` runs the hypothesis fuzzers with many more examples, randomized (the CI run
is short and derandomized: the same examples every time).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import pytest
import yaml
from hypothesis import HealthCheck, settings

from tests.e2e.harness import CLIENT_KEY, HF_TOKEN, GatewayProcess, running_gateway
from tests.fakes.anthropic_server import (
    COUNT_TOKENS_PATH,
    FakeAnthropicServer,
    count_tokens_reply,
    message_reply,
    stream_reply,
    text_events,
)
from tests.fakes.openai_chat_server import FakeChatServer, completion, json_reply, text_stream
from tests.fakes.scripted_server import RecordedRequest, Reply, ScriptedServer

LONG = os.environ.get("AIMW_FUZZ") == "long"
FUZZ = settings(
    max_examples=2000 if LONG else 25,
    derandomize=not LONG,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
BODY_TIMEOUT = 2.0  # seconds: AIMW_CLIENT_BODY_TIMEOUT of the slow-client gateway
_FAILURE_MARKS = ("Traceback", "unexpected failure in the gateway", "Error in ASGI Framework")


def _chat_reply(request: RecordedRequest) -> Reply:
    stream = isinstance(request.body, dict) and request.body.get("stream") is True
    return text_stream() if stream else json_reply(completion())


def _anthropic_reply(request: RecordedRequest) -> Reply:
    if request.path == COUNT_TOKENS_PATH:
        return count_tokens_reply(12)
    stream = isinstance(request.body, dict) and request.body.get("stream") is True
    return stream_reply(text_events()) if stream else message_reply("Hello from Claude.")


def answering(fake: ScriptedServer) -> ScriptedServer:
    """``fake`` started, answering every request it accepts (its checks still reject the others)."""
    fake.start()
    fake.responder = _anthropic_reply if isinstance(fake, FakeAnthropicServer) else _chat_reply
    return fake


@dataclass(frozen=True)
class Fuzzed:
    """A gateway under test and the fakes behind it."""

    name: str
    gateway: GatewayProcess
    fakes: tuple[ScriptedServer, ...]

    @property
    def port(self) -> int:
        return self.gateway.port


def _config_text(chat_url: str, anthropic_url: str) -> str:
    targets = [
        {
            "auth": {"header_name": "Authorization", "header_value": "Bearer ${HUGGINGFACE_API_TOKEN}"},
            "model": {
                "provider": "huggingface",
                "name": "Qwen/Qwen2.5-7B-Instruct",
                "options": {"upstream_url": f"{chat_url}/v1/chat/completions"},
            },
        },
        {"model": {"provider": "anthropic", "options": {"upstream_url": f"{anthropic_url}/v1/messages"}}},
    ]
    config = {"llm_format": "anthropic", "balancer": {"algorithm": "round-robin"}, "targets": targets}
    return yaml.safe_dump(config, sort_keys=False)


class FuzzServers:
    """Each gateway and its fakes, started when first asked for, stopped with ``stack``."""

    def __init__(self, stack: ExitStack, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.stack = stack
        self.tmp_path_factory = tmp_path_factory
        self.started: dict[str, Fuzzed] = {}

    def __getitem__(self, name: str) -> Fuzzed:
        if name not in self.started:
            self.started[name] = self._start(name)
        return self.started[name]

    def _fake(self, fake: ScriptedServer) -> ScriptedServer:
        self.stack.callback(fake.stop)
        return answering(fake)

    def _gateway(self, name: str, app: str, env: dict[str, str]) -> GatewayProcess:
        return self.stack.enter_context(running_gateway(app, env, self.tmp_path_factory, f"fuzz-{name}"))

    def _start(self, name: str) -> Fuzzed:
        if name in ("huggingface", "slow"):
            router = self._fake(FakeChatServer(HF_TOKEN))
            env = {"HUGGINGFACE_API_TOKEN": HF_TOKEN, "AIMW_UPSTREAM_URL": router.url}
            if name == "slow":
                env["AIMW_CLIENT_BODY_TIMEOUT"] = str(BODY_TIMEOUT)
            return Fuzzed(name, self._gateway(name, "recipes.huggingface:app", env), (router,))
        if name == "anthropic":
            api = self._fake(FakeAnthropicServer(CLIENT_KEY))
            gateway = self._gateway(name, "recipes.anthropic:app", {"AIMW_UPSTREAM_URL": api.url})
            return Fuzzed(name, gateway, (api,))
        assert name == "config", name
        router, api = self._fake(FakeChatServer(HF_TOKEN)), self._fake(FakeAnthropicServer(CLIENT_KEY))
        path = self.tmp_path_factory.mktemp("fuzz-config-file") / "gateway.yaml"
        path.write_text(_config_text(router.url, api.url), encoding="utf-8")
        env = {"AIMW_CONFIG": str(path), "HUGGINGFACE_API_TOKEN": HF_TOKEN}
        return Fuzzed(name, self._gateway(name, "recipes.config:app", env), (router, api))


@pytest.fixture(scope="session")
def fuzz_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServers]:
    with ExitStack() as stack:
        yield FuzzServers(stack, tmp_path_factory)


RECIPES = ("huggingface", "anthropic", "config")


@pytest.fixture(params=RECIPES)
def fuzzed(fuzz_servers: FuzzServers, request: pytest.FixtureRequest) -> Iterator[Fuzzed]:
    """Each fuzzed recipe in turn; afterwards it must be up and its output clean."""
    served = fuzz_servers[request.param]
    with clean_output(served.gateway):
        yield served


@pytest.fixture
def slow_gateway(fuzz_servers: FuzzServers) -> Iterator[Fuzzed]:
    """recipes.huggingface with AIMW_CLIENT_BODY_TIMEOUT of 2 s; afterwards it must be up and
    its output clean."""
    served = fuzz_servers["slow"]
    with clean_output(served.gateway):
        yield served


@contextmanager
def clean_output(gateway: GatewayProcess) -> Iterator[GatewayProcess]:
    """Afterwards: the gateway is alive and wrote no traceback or failure line meanwhile."""
    before = len(gateway.output())
    yield gateway
    output = gateway.output()[before:]
    assert gateway.alive(), f"the gateway {gateway.app} died:\n{output[-5000:]}"
    for mark in _FAILURE_MARKS:
        assert mark not in output, f"the gateway {gateway.app} logged {mark!r}:\n{output[-5000:]}"
