"""recipes.config end to end: the Anthropic Python SDK and the real Claude Code CLI ->
Hypercorn serving ``recipes.config:app`` (a real process) on a configuration file in Kong's
ai-proxy-advanced schema (written as YAML in a temporary directory, secrets as ``${VAR}``
in the gateway's environment) -> fakes of several providers on loopback, each checking what
its real provider checks (tests/fakes/): the Gemini API and Vertex AI (with a fake Google
token endpoint), Azure OpenAI, OpenAI, the Hugging Face router, DashScope and Anthropic.

Every target is pointed at its fake with Kong's ``model.options.upstream_url`` (the whole
endpoint URL). The gateways (one per configuration) and the fakes are started once for the
module; each test attributes its requests and log lines to itself by its ``x-e2e-case``.

- Failover (``priority``, the first target the primary): on each of Kong's criteria
  (unreachable = error, a stall past read_timeout = timeout, 429, 500, 503) the client gets
  the next target's answer translated from its own format, and the log line lists every try
  in ai.proxy.tried_targets; three providers chained in one request; a stream fails over
  before its first byte and never after; a provider's 400 never fails over; every target
  failing is a 529 naming each try.
- Sticky sessions (consistent-hashing on x-claude-code-session-id), model routing
  (model_alias), the circuit breaker (max_fails / fail_timeout).
- The real Claude Code CLI's two-turn Bash session through a config whose first target is down.
- Kong's five Claude Code guides' deck files, each serving one request from a fake of its
  provider, logging to the guide's file-log path.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import yaml

import anthropic
from bench.validate import AnthropicStream, read_anthropic_stream
from tests.config.test_guides import ANTHROPIC_GUIDE, AZURE_GUIDE, DASHSCOPE_GUIDE, HUGGINGFACE_GUIDE, VERTEX_GUIDE
from tests.e2e.harness import (
    CLIENT_KEY,
    HF_MODEL,
    HF_TOKEN,
    GatewayProcess,
    assert_log_usage,
    checked_fake,
    exact_log_lines,
    run_bash_session,
    sdk_client,
)
from tests.e2e.recipes import AZURE_DEPLOYMENT, AZURE_INSTANCE, AZURE_KEY, DASHSCOPE_KEY, OPENAI_KEY
from tests.e2e.scenarios import assert_chat_tool_round_trip
from tests.fakes import gemini_server
from tests.fakes.anthropic_server import FakeAnthropicServer, message_reply
from tests.fakes.gemini_server import FakeGeminiServer, gemini_api, google_error_reply, text_response, vertex_ai
from tests.fakes.google_oauth import FakeGoogleOAuth
from tests.fakes.openai_chat_server import (
    AZURE_MODEL,
    DASHSCOPE_MODEL,
    OPENAI_MODEL,
    FakeChatServer,
    ToolCall,
    azure_completion,
    azure_profile,
    azure_server_error,
    azure_text_stream,
    azure_tool_call_stream,
    completion,
    dashscope_completion,
    json_reply,
    openai_completion,
    openai_rate_limited,
    openai_server_error,
    text_stream,
)
from tests.fakes.openai_chat_server import DASHSCOPE as DASHSCOPE_PROFILE
from tests.fakes.openai_chat_server import OPENAI as OPENAI_PROFILE
from tests.fakes.scripted_server import RecordedRequest, Reply, ScriptedServer

pytestmark = pytest.mark.e2e
T = TypeVar("T")

GEMINI_KEY = "AIzaSy" + "E2eConfigKey0aimwQ9wX2vB7nM4pL6rT"  # the Gemini API's key (x-goog-api-key)
GEMINI_MODEL = gemini_server.DEFAULT_MODEL  # gemini-2.5-flash: the model the fakes serve
AZURE_API_VERSION = "2025-01-01-preview"
AZURE_NAME = "gpt-4o"  # the Azure target's model.name (what the log names)
OPENAI_NAME = "gpt-4.1"
CHEAP_MODEL = "Qwen/Qwen2.5-7B-Instruct"  # the Hugging Face target's model in the routing config
PROJECT, LOCATION = "aimw-e2e-project", "us-central1"
VERTEX_ENDPOINT = "us-central1-aiplatform.googleapis.com"
VERTEX_ACCOUNT = "aimw-config-guide@aimw-e2e-project.iam.gserviceaccount.com"
PROVIDER_KEYS = (GEMINI_KEY, AZURE_KEY, OPENAI_KEY, HF_TOKEN, DASHSCOPE_KEY)
SECRETS_ENV = {
    "GEMINI_API_KEY": GEMINI_KEY,
    "AZURE_OPENAI_API_KEY": AZURE_KEY,
    "OPENAI_API_KEY": OPENAI_KEY,
    "HUGGINGFACE_API_TOKEN": HF_TOKEN,
}
MODEL = "claude-x"  # what the SDK asks for
USER = [{"role": "user", "content": "Which target answers?"}]
READ_TIMEOUT = 1000  # ms: the failover gateway's balancer.read_timeout
STALL = 10.0  # seconds a stalled fake holds its answer at most (far past READ_TIMEOUT)
FAIL_TIMEOUT = 2000  # ms: the circuit gateway's balancer.fail_timeout
CIRCUIT_WAIT = 20.0  # seconds the circuit test waits at most for the primary to be probed again
FAILOVER_CRITERIA = ["error", "timeout", "http_429", "http_500", "http_503", "non_idempotent"]
AZURE_USAGE, OPENAI_USAGE = (31, 9), (44, 13)  # what the answering fakes report


# ---------------------------------------------------------------- the configurations


def gemini_target(base_url: str, weight: int = 100) -> dict:
    """The Gemini API at ``base_url``, its key in x-goog-api-key (never in the query)."""
    return {
        "weight": weight,
        "auth": {"header_name": "x-goog-api-key", "header_value": "${GEMINI_API_KEY}"},
        "model": {
            "provider": "gemini",
            "name": GEMINI_MODEL,
            "options": {"upstream_url": f"{base_url}/v1beta/models/{GEMINI_MODEL}"},
        },
    }


def azure_target(base_url: str, weight: int = 100) -> dict:
    return {
        "weight": weight,
        "auth": {"header_name": "api-key", "header_value": "${AZURE_OPENAI_API_KEY}"},
        "model": {
            "provider": "azure",
            "name": AZURE_NAME,
            "options": {
                "azure_instance": AZURE_INSTANCE,
                "azure_deployment_id": AZURE_DEPLOYMENT,
                "azure_api_version": AZURE_API_VERSION,
                "upstream_url": f"{base_url}/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions",
            },
        },
    }


def openai_target(base_url: str, weight: int = 100, **model: object) -> dict:
    return {
        "weight": weight,
        "auth": {"header_name": "Authorization", "header_value": "Bearer ${OPENAI_API_KEY}"},
        "model": {
            "provider": "openai",
            "name": OPENAI_NAME,
            "options": {"upstream_url": f"{base_url}/v1/chat/completions"},
            **model,
        },
    }


def huggingface_target(base_url: str, weight: int = 100, **model: object) -> dict:
    return {
        "weight": weight,
        "auth": {"header_name": "Authorization", "header_value": "Bearer ${HUGGINGFACE_API_TOKEN}"},
        "model": {
            "provider": "huggingface",
            "name": CHEAP_MODEL,
            "options": {"upstream_url": f"{base_url}/v1/chat/completions"},
            **model,
        },
    }


def config_text(balancer: dict, targets: list[dict]) -> str:
    return yaml.safe_dump({"llm_format": "anthropic", "balancer": balancer, "targets": targets}, sort_keys=False)


def guide_deck(guide: str, upstream_url: str, log_path: Path, *, drop_model_name: bool = False) -> str:
    """A guide's deck file with ``upstream_url`` added to its one target and its file-log
    plugin's path (the guides' ``/tmp/claude.json``) moved to ``log_path``; with
    ``drop_model_name`` its target's ``model.name`` removed too."""
    deck = yaml.safe_load(guide)
    plugins = {plugin["name"]: plugin["config"] for plugin in deck["plugins"]}
    proxy = plugins.get("ai-proxy") or plugins["ai-proxy-advanced"]["targets"][0]
    proxy["model"].setdefault("options", {})["upstream_url"] = upstream_url
    if drop_model_name:
        del proxy["model"]["name"]
    assert plugins["file-log"]["path"] == "/tmp/claude.json"  # the guide's own
    plugins["file-log"]["path"] = str(log_path)
    return yaml.safe_dump(deck, sort_keys=False)


# ---------------------------------------------------------------- servers


class ConfigServers:
    """The module's fakes, and the gateways serving recipes.config on configuration files,
    all stopped with ``stack``."""

    def __init__(self, stack: ExitStack, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.stack = stack
        self.tmp_path_factory = tmp_path_factory
        self.gateways: list[GatewayProcess] = []
        self.oauth = FakeGoogleOAuth()
        self.gemini = FakeGeminiServer(gemini_api(), api_key=GEMINI_KEY)
        self.vertex = FakeGeminiServer(vertex_ai(PROJECT, LOCATION), valid_token=self.oauth.is_valid_token)
        self.azure = FakeChatServer(AZURE_KEY, azure_profile(AZURE_DEPLOYMENT, AZURE_API_VERSION))
        self.azure_bearer = FakeChatServer(  # the Azure guide's: Authorization: Bearer
            AZURE_KEY, azure_profile(AZURE_DEPLOYMENT, AZURE_API_VERSION, auth_header="authorization")
        )
        self.openai = FakeChatServer(OPENAI_KEY, OPENAI_PROFILE)
        self.huggingface = FakeChatServer(HF_TOKEN)
        self.dashscope = FakeChatServer(DASHSCOPE_KEY, DASHSCOPE_PROFILE)
        self.anthropic = FakeAnthropicServer(CLIENT_KEY)  # no key of its own: the client's passes
        # stopped side by side (each server's shutdown waits up to its poll interval), the gateways first
        servers = [self.oauth, *self.fakes]
        stack.callback(_side_by_side, lambda server: server.stop(), servers)
        stack.callback(lambda: _side_by_side(GatewayProcess.stop, self.gateways))
        for server in servers:
            server.start()

    @property
    def fakes(self) -> list[ScriptedServer]:
        return [
            self.gemini,
            self.vertex,
            self.azure,
            self.azure_bearer,
            self.openai,
            self.huggingface,
            self.dashscope,
            self.anthropic,
        ]

    def serve(self, configs: dict[str, tuple[str, dict[str, str]]]) -> dict[str, GatewayProcess]:
        """A gateway per ``name: (configuration text, environment)``, started side by side."""
        gateways = {}
        for name, (text, env) in configs.items():
            directory = self.tmp_path_factory.mktemp(name)
            path = directory / "gateway.yaml"
            path.write_text(text, encoding="utf-8")
            gateways[name] = GatewayProcess("recipes.config:app", {"AIMW_CONFIG": str(path), **env}, directory)
        self.gateways += gateways.values()  # stopped with the stack, even when one fails to start
        _side_by_side(GatewayProcess.start, gateways.values())
        return gateways


def _side_by_side(method: Callable[[T], object], items: Iterable[T]) -> None:
    """``method`` on each item, in threads (servers start and stop in parallel)."""
    items = list(items)
    if items:
        with ThreadPoolExecutor(len(items)) as pool:
            list(pool.map(method, items))


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[ConfigServers]:
    with ExitStack() as stack:
        yield ConfigServers(stack, tmp_path_factory)


@pytest.fixture(scope="module")
def failover_gateway(servers) -> GatewayProcess:
    """priority: the Gemini API (the primary), then Azure, then OpenAI; every criterion fails
    over; read_timeout 1 s."""
    balancer = {"algorithm": "priority", "failover_criteria": FAILOVER_CRITERIA, "read_timeout": READ_TIMEOUT}
    targets = [gemini_target(servers.gemini.url, 100), azure_target(servers.azure.url, 50)]
    targets.append(openai_target(servers.openai.url, 10))
    return servers.serve({"failover": (config_text(balancer, targets), SECRETS_ENV)})["failover"]


@pytest.fixture(scope="module")
def dead_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nothing else takes it), never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture(scope="module")
def down_first_gateway(servers, dead_port) -> GatewayProcess:
    """priority: the Gemini API at a port nothing listens on, then Azure, then OpenAI."""
    balancer = {"algorithm": "priority", "failover_criteria": FAILOVER_CRITERIA}
    targets = [gemini_target(f"http://127.0.0.1:{dead_port}", 100), azure_target(servers.azure.url, 50)]
    targets.append(openai_target(servers.openai.url, 10))
    return servers.serve({"down-first": (config_text(balancer, targets), SECRETS_ENV)})["down-first"]


@pytest.fixture(scope="module")
def sticky_gateway(servers) -> GatewayProcess:
    """consistent-hashing on Claude Code's session header over OpenAI and Hugging Face."""
    balancer = {"algorithm": "consistent-hashing", "hash_on_header": "x-claude-code-session-id"}
    targets = [openai_target(servers.openai.url), huggingface_target(servers.huggingface.url)]
    return servers.serve({"sticky": (config_text(balancer, targets), SECRETS_ENV)})["sticky"]


@pytest.fixture(scope="module")
def routing_gateway(servers) -> GatewayProcess:
    """round-robin over a cheap target for haiku and a strong one for sonnet (model_alias)."""
    targets = [
        huggingface_target(servers.huggingface.url, model_alias="claude-haiku-*"),
        openai_target(servers.openai.url, model_alias=["claude-sonnet-*"]),
    ]
    return servers.serve({"routing": (config_text({"algorithm": "round-robin"}, targets), SECRETS_ENV)})["routing"]


@pytest.fixture(scope="module")
def circuit_gateway(servers) -> GatewayProcess:
    """priority: OpenAI (the primary), then Hugging Face; one failure opens a circuit for 2 s."""
    balancer = {
        "algorithm": "priority",
        "failover_criteria": FAILOVER_CRITERIA,
        "max_fails": 1,
        "fail_timeout": FAIL_TIMEOUT,
    }
    targets = [openai_target(servers.openai.url, 100), huggingface_target(servers.huggingface.url, 50)]
    return servers.serve({"circuit": (config_text(balancer, targets), SECRETS_ENV)})["circuit"]


@pytest.fixture
def fakes(servers, request) -> Iterator[ConfigServers]:
    """Every fake emptied for this test; afterwards each must have rejected nothing, every
    scripted reply must have been used, and every gateway must be up without a traceback."""
    with ExitStack() as stack:
        for fake in servers.fakes:
            stack.enter_context(checked_fake(fake, list(servers.gateways), request))
        yield servers


# ---------------------------------------------------------------- helpers


def ask(
    gateway: GatewayProcess,
    case: str,
    *,
    model: str = MODEL,
    max_tokens: int = 64,
    messages: list[dict] = USER,
    stream: bool = False,
    **kwargs,
) -> anthropic.types.Message:
    """One request through the SDK (streamed: the stream's final message); its client (and
    so its keep-alive connection to the gateway) closed afterwards."""
    with sdk_client(gateway.url, case) as client:
        if not stream:
            return client.messages.create(model=model, max_tokens=max_tokens, messages=messages, **kwargs)
        with client.messages.stream(model=model, max_tokens=max_tokens, messages=messages, **kwargs) as events:
            return events.get_final_message()


def raw_stream(gateway: GatewayProcess, case: str) -> tuple[httpx.Response, AnthropicStream]:
    """POST a streamed request with httpx: the response and its stream, read by the shared
    validator (every DESIGN §6 invariant checked by the caller through ``problems``)."""
    response = httpx.post(
        gateway.url + "/v1/messages",
        json={"model": MODEL, "max_tokens": 64, "stream": True, "messages": USER},
        headers={"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01", "x-e2e-case": case},
        timeout=30.0,
        trust_env=False,
    )
    return response, read_anthropic_stream(response.content)


def tried(line: dict) -> list[dict]:
    return line["ai"]["proxy"]["tried_targets"]


def assert_tried(entry: dict, provider: str, model: str, port: int, uri: str, failure: str | None = None) -> None:
    """One Kong-shaped tried_targets object: where the try went, and why it failed (None: it did not)."""
    assert {key: entry[key] for key in ("provider", "model", "host", "port", "ip", "upstream_scheme")} == {
        "provider": provider,
        "model": model,
        "host": "127.0.0.1",
        "port": port,
        "ip": "127.0.0.1",
        "upstream_scheme": "http",
    }, entry
    assert (entry["upstream_uri"], entry["route_type"]) == (uri, "llm/v1/chat"), entry
    if failure is None:
        assert "failure" not in entry, entry
    else:
        assert failure in entry["failure"], entry


def gemini_uri(method: str = "generateContent") -> str:
    return f"/v1beta/models/{GEMINI_MODEL}:{method}"


AZURE_URI = f"/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions"
CHAT_URI = "/v1/chat/completions"


def assert_answered_by_azure(line: dict, mode: str = "oneshot") -> None:
    meta = line["ai"]["proxy"]["meta"]
    assert (meta["provider_name"], meta["request_model"], meta["response_model"], meta["request_mode"]) == (
        "azure",
        AZURE_NAME,
        AZURE_MODEL,
        mode,
    )
    assert (meta["azure_instance_id"], meta["azure_deployment_id"], meta["azure_api_version"]) == (
        AZURE_INSTANCE,
        AZURE_DEPLOYMENT,
        AZURE_API_VERSION,
    )
    assert "error" not in meta
    assert line["response"]["status"] == 200
    assert line["upstream_uri"] == f"{AZURE_URI}?api-version={AZURE_API_VERSION}"
    assert_log_usage(line, *AZURE_USAGE)


def assert_no_secret(gateway: GatewayProcess, *texts: str) -> None:
    for text in (gateway.log_text(), *texts):
        for secret in (*PROVIDER_KEYS, CLIENT_KEY):
            assert secret not in text


@contextmanager
def stalled(fake: ScriptedServer) -> Iterator[threading.Event]:
    """``fake`` holds every request (sending nothing, not even its headers) until the block
    ends or STALL seconds passed, then answers 503."""
    release = threading.Event()

    def stall(request: RecordedRequest) -> Reply:
        release.wait(STALL)
        return gemini_server.unavailable()

    fake.responder = stall
    try:
        yield release
    finally:
        release.set()


def answering(text: str, reply: Callable[[str], Reply]) -> Callable[[RecordedRequest], Reply]:
    """A responder answering every request with ``reply(text)``."""
    return lambda request: reply(text)


# ---------------------------------------------------------------- failover, one criterion at a time

GEMINI_FAILURES: dict[str, Callable[[], Reply]] = {
    "http_429": gemini_server.rate_limited,
    "http_500": lambda: google_error_reply(500, "INTERNAL", "An internal error has occurred."),
    "http_503": gemini_server.unavailable,
}
FAILURE_REASONS = {  # what tried_targets[0].failure says
    "error": "the upstream provider is unreachable",
    "timeout": "the upstream provider did not answer in time",
    "http_429": "provider answered HTTP 429",
    "http_500": "provider answered HTTP 500",
    "http_503": "provider answered HTTP 503",
}


@pytest.fixture
def criterion_gateway(request, criterion) -> GatewayProcess:
    """Unreachable needs the gateway whose first target is down; the others the failover gateway."""
    return request.getfixturevalue("down_first_gateway" if criterion == "error" else "failover_gateway")


@pytest.mark.parametrize("criterion", list(FAILURE_REASONS))
def test_failover_on_each_criterion(criterion_gateway, fakes, dead_port, case, criterion):
    """The Gemini API target fails (unreachable, stalls past read_timeout, 429, 500, 503):
    the client gets the Azure target's answer, translated; the log line names both tries in
    order, the Azure target as the one that answered, with Azure's usage."""
    gateway = criterion_gateway
    gemini_port = dead_port if criterion == "error" else fakes.gemini.port
    fakes.azure.enqueue(json_reply(azure_completion("Azure answered.", usage=AZURE_USAGE)))
    with ExitStack() as stack:
        if criterion == "timeout":
            stack.enter_context(stalled(fakes.gemini))
        elif criterion in GEMINI_FAILURES:
            fakes.gemini.enqueue(GEMINI_FAILURES[criterion]())
        with sdk_client(gateway.url, case) as client:
            raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=64, messages=USER)
            message = raw.parse()

    assert message.content[0].text == "Azure answered."
    assert raw.headers["x-aimw-llm-model"] == f"azure/{AZURE_NAME}"  # Kong's X-Kong-LLM-Model: who answered
    assert message.model == AZURE_MODEL
    assert (message.usage.input_tokens, message.usage.output_tokens) == AZURE_USAGE
    assert len(fakes.gemini.requests_for(case)) == (0 if criterion == "error" else 1)
    (sent,) = fakes.azure.requests_for(case)
    assert sent.body["model"] == AZURE_NAME and sent.headers["api-key"] == AZURE_KEY
    assert fakes.openai.requests_for(case) == []
    (line,) = exact_log_lines(gateway, case)
    first, second = tried(line)
    assert_tried(first, "gemini", GEMINI_MODEL, gemini_port, gemini_uri(), FAILURE_REASONS[criterion])
    assert_tried(second, "azure", AZURE_NAME, fakes.azure.port, AZURE_URI)
    assert_answered_by_azure(line)
    assert_no_secret(gateway)


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_three_providers_chained_in_one_request(fakes, failover_gateway, case, stream):
    """Gemini 503, then Azure 500, then OpenAI answers: one request, three providers, three
    wire formats; the client gets OpenAI's answer."""
    fakes.gemini.enqueue(gemini_server.unavailable())
    fakes.azure.enqueue(azure_server_error(500))
    if stream:
        fakes.openai.enqueue(text_stream(("OpenAI ", "answered ", "third."), model=OPENAI_MODEL, usage=OPENAI_USAGE))
    else:
        fakes.openai.enqueue(json_reply(openai_completion("OpenAI answered third.", usage=OPENAI_USAGE)))

    message = ask(failover_gateway, case, stream=stream)

    assert message.content[0].text == "OpenAI answered third."
    assert message.model == OPENAI_MODEL
    method = "streamGenerateContent" if stream else "generateContent"
    assert [r.path for r in fakes.gemini.requests_for(case)] == [gemini_uri(method)]
    assert len(fakes.azure.requests_for(case)) == 1
    (sent,) = fakes.openai.requests_for(case)
    assert (sent.body["model"], sent.body.get("stream", False)) == (OPENAI_NAME, stream)
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    (line,) = exact_log_lines(failover_gateway, case)
    gemini_try, azure_try, openai_try = tried(line)
    assert_tried(gemini_try, "gemini", GEMINI_MODEL, fakes.gemini.port, gemini_uri(method), FAILURE_REASONS["http_503"])
    assert_tried(azure_try, "azure", AZURE_NAME, fakes.azure.port, AZURE_URI, FAILURE_REASONS["http_500"])
    assert_tried(openai_try, "openai", OPENAI_NAME, fakes.openai.port, CHAT_URI)
    meta = line["ai"]["proxy"]["meta"]
    assert (meta["provider_name"], meta["request_model"], meta["response_model"]) == (
        "openai",
        OPENAI_NAME,
        OPENAI_MODEL,
    )
    assert meta["request_mode"] == ("stream" if stream else "oneshot")
    assert "azure_instance_id" not in meta  # the failed Azure try's meta is not the answer's
    assert_log_usage(line, *OPENAI_USAGE)


# ---------------------------------------------------------------- streams


def test_stream_fails_over_before_the_first_byte(fakes, failover_gateway, case):
    """The Gemini API answers a stream request 503: the client's stream is Azure's, whole
    and well formed (no trace of the failed try)."""
    fakes.gemini.enqueue(gemini_server.unavailable())
    fakes.azure.enqueue(azure_text_stream(("Azure ", "streamed ", "this."), usage=AZURE_USAGE))

    response, stream = raw_stream(failover_gateway, case)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert not stream.problems, stream.problems
    assert stream.names[0] == "message_start" and stream.names[-1] == "message_stop"
    assert "error" not in stream.names
    assert stream.text == "Azure streamed this."
    assert stream.stop_reason == "end_turn"
    assert stream.message["model"] == AZURE_MODEL
    assert stream.usage["output_tokens"] == AZURE_USAGE[1]
    assert [r.path for r in fakes.gemini.requests_for(case)] == [gemini_uri("streamGenerateContent")]
    (sent,) = fakes.azure.requests_for(case)
    assert sent.body["stream"] is True
    (line,) = exact_log_lines(failover_gateway, case)
    first, second = tried(line)
    assert_tried(
        first,
        "gemini",
        GEMINI_MODEL,
        fakes.gemini.port,
        gemini_uri("streamGenerateContent"),
        FAILURE_REASONS["http_503"],
    )
    assert_tried(second, "azure", AZURE_NAME, fakes.azure.port, AZURE_URI)
    assert_answered_by_azure(line, "stream")


def test_stream_never_fails_over_after_the_first_byte(fakes, failover_gateway, case):
    """The Gemini API's stream starts, then its connection is cut: the client keeps what it
    got and the stream ends with an error event; no other target is asked."""
    chunks = gemini_server.text_chunks(("This answer ", "stops ", "in the mid"), usage=(12, 3))
    fakes.gemini.enqueue(gemini_server.sse_reply(chunks[:-1], cut=True))

    response, stream = raw_stream(failover_gateway, case)

    assert response.status_code == 200
    assert not stream.problems, stream.problems
    assert stream.names[0] == "message_start"
    assert stream.text == "This answer stops "
    assert stream.names[-1] == "error" and "message_stop" not in stream.names
    assert stream.error["type"] in ("api_error", "overloaded_error")
    assert fakes.azure.requests_for(case) == [] and fakes.openai.requests_for(case) == []
    (line,) = exact_log_lines(failover_gateway, case)
    (only,) = tried(line)
    assert only["provider"] == "gemini" and only["port"] == fakes.gemini.port
    meta = line["ai"]["proxy"]["meta"]
    assert meta["provider_name"] == "gemini" and meta["request_mode"] == "stream"
    assert meta["error"]


# ---------------------------------------------------------------- what never fails over


@pytest.mark.parametrize("stream", [False, True], ids=["oneshot", "stream"])
def test_a_providers_400_never_fails_over(fakes, failover_gateway, case, stream):
    """The Gemini API refuses the request (400 INVALID_ARGUMENT): the client gets that 400,
    and neither other target hears of the request."""
    google_message = "Request contains an invalid argument: contents.parts must not be empty."
    fakes.gemini.enqueue(google_error_reply(400, "INVALID_ARGUMENT", google_message))

    with pytest.raises(anthropic.BadRequestError) as caught:
        ask(failover_gateway, case, stream=stream)

    assert caught.value.status_code == 400
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert google_message in caught.value.message
    assert len(fakes.gemini.requests_for(case)) == 1
    assert fakes.azure.requests_for(case) == [] and fakes.openai.requests_for(case) == []
    (line,) = exact_log_lines(failover_gateway, case)
    assert line["response"]["status"] == 400
    (only,) = tried(line)
    assert only["provider"] == "gemini"


def test_every_target_failing_is_529_naming_each_try(fakes, failover_gateway, case):
    """Gemini 503, Azure 500, OpenAI 429: the client gets 529 overloaded_error naming each
    try in order; the log line says so and lists the three failed tries."""
    fakes.gemini.enqueue(gemini_server.unavailable())
    fakes.azure.enqueue(azure_server_error(500))
    fakes.openai.enqueue(openai_rate_limited())

    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(failover_gateway, case)

    error = caught.value
    assert error.status_code == 529
    assert error.body["error"]["type"] == "overloaded_error"
    message = error.body["error"]["message"]
    names = [
        f"targets[0] (gemini/{GEMINI_MODEL})",
        f"targets[1] (azure/{AZURE_NAME})",
        f"targets[2] (openai/{OPENAI_NAME})",
    ]
    positions = [message.find(name) for name in names]
    assert -1 not in positions and positions == sorted(positions), message
    for status in ("503", "500", "429"):
        assert status in message
    for fake in (fakes.gemini, fakes.azure, fakes.openai):
        assert len(fake.requests_for(case)) == 1
    (line,) = exact_log_lines(failover_gateway, case)
    assert line["response"]["status"] == 529
    assert line["ai"]["proxy"]["meta"]["error"].startswith("overloaded_error: no target answered")
    gemini_try, azure_try, openai_try = tried(line)
    assert_tried(gemini_try, "gemini", GEMINI_MODEL, fakes.gemini.port, gemini_uri(), FAILURE_REASONS["http_503"])
    assert_tried(azure_try, "azure", AZURE_NAME, fakes.azure.port, AZURE_URI, FAILURE_REASONS["http_500"])
    assert_tried(openai_try, "openai", OPENAI_NAME, fakes.openai.port, CHAT_URI, FAILURE_REASONS["http_429"])
    assert_no_secret(failover_gateway, json.dumps(error.body))


# ---------------------------------------------------------------- sticky sessions


def test_sticky_sessions_on_claude_codes_session_header(fakes, sticky_gateway, case):
    """consistent-hashing on x-claude-code-session-id: ten requests of one session all reach
    one target; many sessions spread over both, each staying on its own target."""
    fakes.openai.responder = answering("openai", lambda text: json_reply(openai_completion(text)))
    fakes.huggingface.responder = answering("huggingface", lambda text: json_reply(completion(text)))

    def target_of(session: str) -> str:
        return ask(sticky_gateway, case, extra_headers={"x-claude-code-session-id": session}).content[0].text

    one_session = str(uuid.UUID(int=7))
    assert len({target_of(one_session) for _ in range(10)}) == 1
    sessions = [str(uuid.UUID(int=1000 + n)) for n in range(12)]
    first = {session: target_of(session) for session in sessions}
    second = {session: target_of(session) for session in sessions}
    assert first == second  # each session stays where it went
    assert set(first.values()) == {"openai", "huggingface"}, first
    answered = len(fakes.openai.requests_for(case)) + len(fakes.huggingface.requests_for(case))
    assert answered == 10 + 2 * len(sessions)  # no request was tried twice
    for line in exact_log_lines(sticky_gateway, case, 10 + 2 * len(sessions)):
        assert len(tried(line)) == 1


# ---------------------------------------------------------------- model routing


def test_model_alias_routes_each_model_to_its_target(fakes, routing_gateway, case):
    """claude-haiku-* goes to the cheap Hugging Face target, claude-sonnet-* to the strong
    OpenAI one (three of each in a row: round robin alone would split them); a model no
    alias matches is a 400 naming it, sent nowhere."""
    fakes.huggingface.responder = answering("cheap", lambda text: json_reply(completion(text, model=CHEAP_MODEL)))
    fakes.openai.responder = answering("strong", lambda text: json_reply(openai_completion(text)))

    haiku = [ask(routing_gateway, case, model="claude-haiku-4-5").content[0].text for _ in range(3)]
    sonnet = [ask(routing_gateway, case, model="claude-sonnet-4-5").content[0].text for _ in range(3)]

    assert haiku == ["cheap"] * 3 and sonnet == ["strong"] * 3
    assert [r.body["model"] for r in fakes.huggingface.requests_for(case)] == [CHEAP_MODEL] * 3
    assert [r.body["model"] for r in fakes.openai.requests_for(case)] == [OPENAI_NAME] * 3
    lines = exact_log_lines(routing_gateway, case, 6)
    assert [line["ai"]["proxy"]["meta"]["provider_name"] for line in lines] == ["huggingface"] * 3 + ["openai"] * 3

    with pytest.raises(anthropic.BadRequestError) as caught:
        ask(routing_gateway, case, model="claude-opus-4-1")
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "claude-opus-4-1" in caught.value.message
    assert len(fakes.huggingface.requests_for(case)) == 3 and len(fakes.openai.requests_for(case)) == 3
    refused = routing_gateway.wait_log_lines(7, case)[6]
    assert refused["response"]["status"] == 400


# ---------------------------------------------------------------- the circuit breaker


def test_circuit_breaker_skips_a_failed_target_until_fail_timeout(fakes, circuit_gateway, case):
    """max_fails 1: after the primary (OpenAI) fails once, the next request goes straight to
    the fallback, the primary seeing nothing; once fail_timeout passed the primary is tried
    again, and, answering, gets the traffic back."""
    fakes.openai.enqueue(openai_server_error(503))
    fakes.huggingface.responder = answering("fallback", lambda text: json_reply(completion(text)))

    assert ask(circuit_gateway, case).content[0].text == "fallback"  # the primary failed: its circuit opens
    assert ask(circuit_gateway, case).content[0].text == "fallback"
    assert len(fakes.openai.requests_for(case)) == 1  # the second request skipped the primary
    failed, skipped = exact_log_lines(circuit_gateway, case, 2)
    assert [entry["provider"] for entry in tried(failed)] == ["openai", "huggingface"]
    assert [entry["provider"] for entry in tried(skipped)] == ["huggingface"]

    fakes.openai.responder = answering("primary", lambda text: json_reply(openai_completion(text)))
    deadline = time.monotonic() + CIRCUIT_WAIT
    answers = []
    while not answers or answers[-1] != "primary":
        assert time.monotonic() < deadline, f"the primary was not tried again within {CIRCUIT_WAIT:.0f} s: {answers}"
        time.sleep(0.1)
        answers.append(ask(circuit_gateway, case).content[0].text)
    assert set(answers[:-1]) <= {"fallback"}
    assert ask(circuit_gateway, case).content[0].text == "primary"  # the probe closed the circuit
    assert len(fakes.openai.requests_for(case)) == 3


# ---------------------------------------------------------------- the real Claude Code CLI

CLI_MODEL = "claude-e2e-model"
TOOL_ID = "toolu_bash_config_1"
FIRST_TEXT = ("I will run ", "the command.")
CLI_USAGES = ((1500, 40), (1600, 15))


def test_claude_code_two_turn_bash_session_first_target_down(claude_bin, fakes, down_first_gateway, case, tmp_path):
    """The real CLI through a config whose first target (the Gemini API) is down: both turns
    fail over to Azure; turn 1 streams a Bash tool call, the CLI runs it, turn 2 carries the
    output back as a role "tool" message and the CLI prints Azure's final answer."""
    token = uuid.uuid4().hex[:12]
    command = f"echo aimw-config-$((6*7))-{token}"
    printed = f"aimw-config-42-{token}"  # only running the command produces this text
    final_text = f"The command printed {printed}."
    call = ToolCall(TOOL_ID, "Bash", {"command": command, "description": "Print the e2e token"})
    fakes.azure.enqueue(
        azure_tool_call_stream([call], text=FIRST_TEXT, pieces=4, usage=CLI_USAGES[0]),
        azure_text_stream((final_text[:12], final_text[12:]), usage=CLI_USAGES[1]),
    )

    completed, output = run_bash_session(claude_bin, down_first_gateway.url, command, tmp_path, case, CLI_MODEL)
    assert output["result"] == final_text
    assert output["usage"]["output_tokens"] == sum(usage[1] for usage in CLI_USAGES)

    requests = fakes.azure.requests_for(case)
    assert len(requests) == 2, [(r.method, r.path) for r in requests]
    for sent in requests:
        assert (sent.path, sent.query) == (AZURE_URI, f"api-version={AZURE_API_VERSION}")
        assert sent.headers["api-key"] == AZURE_KEY
        assert sent.headers["user-agent"].startswith("claude-cli/")
        assert sent.body["model"] == AZURE_NAME and sent.body["stream"] is True
        assert "Bash" in {tool["function"]["name"] for tool in sent.body["tools"]}
    first, second = (sent.body for sent in requests)
    assert_chat_tool_round_trip(first, second, command, printed, TOOL_ID, "".join(FIRST_TEXT))

    lines = exact_log_lines(down_first_gateway, case, 2)
    for line, usage in zip(lines, CLI_USAGES, strict=True):
        assert (line["request"]["uri"], line["response"]["status"]) == ("/v1/messages?beta=true", 200)
        gemini_try, azure_try = tried(line)
        assert (gemini_try["provider"], azure_try["provider"]) == ("gemini", "azure")
        assert "unreachable" in gemini_try["failure"] and "failure" not in azure_try
        meta = line["ai"]["proxy"]["meta"]
        assert (meta["provider_name"], meta["request_model"], meta["request_mode"]) == ("azure", AZURE_NAME, "stream")
        assert_log_usage(line, *usage)
    assert_no_secret(down_first_gateway, completed.stdout, completed.stderr)


# ---------------------------------------------------------------- Kong's five Claude Code guides


class Guide:
    """One guide's gateway: its deck file served, logging where its file-log plugin says."""

    def __init__(self, gateway: GatewayProcess, log_path: Path) -> None:
        self.gateway = gateway
        self.default_log_path = gateway.log_path  # AIMW_LOG_PATH, which the deck's file-log replaces
        gateway.log_path = log_path


@pytest.fixture(scope="module")
def guides(servers, tmp_path_factory) -> dict[str, Guide]:
    """Each guide's deck file with ``upstream_url`` pointing its target at the fake of its
    provider, and its file-log path in a temporary directory; plus the Hugging Face guide
    without ``model.name``, where only its pre-function keeps the client's model from the
    router. The six gateways start side by side."""
    logs = tmp_path_factory.mktemp("guide-logs")
    vertex_key = json.dumps(servers.oauth.service_account_key(VERTEX_ACCOUNT))
    vertex_path = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{GEMINI_MODEL}"
    hf_url = f"{servers.huggingface.url}/v1/chat/completions"
    decks = {
        "huggingface": (HUGGINGFACE_GUIDE, hf_url, {"DECK_HUGGINGFACE_API_TOKEN": HF_TOKEN}),
        "anthropic": (ANTHROPIC_GUIDE, servers.anthropic.url, {}),
        "azure": (
            AZURE_GUIDE,
            f"{servers.azure_bearer.url}/openai/deployments/{AZURE_DEPLOYMENT}/chat/completions",
            {
                "DECK_AZURE_OPENAI_API_KEY": AZURE_KEY,
                "DECK_AZURE_INSTANCE_NAME": AZURE_INSTANCE,
                "DECK_AZURE_DEPLOYMENT_ID": AZURE_DEPLOYMENT,
            },
        ),
        "dashscope": (
            DASHSCOPE_GUIDE,
            f"{servers.dashscope.url}/compatible-mode/v1/chat/completions",
            {"DECK_DASHSCOPE_API_KEY": DASHSCOPE_KEY},
        ),
        "vertex": (
            VERTEX_GUIDE,
            servers.vertex.url + vertex_path,
            {
                "DECK_GEMINI_API_KEY": vertex_key,
                "DECK_GEMINI_API_ENDPOINT": VERTEX_ENDPOINT,
                "DECK_GCP_PROJECT_ID": PROJECT,
                "DECK_GEMINI_LOCATION_ID": LOCATION,
            },
        ),
    }
    configs = {
        f"guide-{name}": (guide_deck(guide, url, logs / f"{name}.json"), env)
        for name, (guide, url, env) in decks.items()
    }
    configs["guide-huggingface-unnamed"] = (
        guide_deck(HUGGINGFACE_GUIDE, hf_url, logs / "huggingface-unnamed.json", drop_model_name=True),
        decks["huggingface"][2],
    )
    gateways = servers.serve(configs)
    return {
        name.removeprefix("guide-"): Guide(gateway, logs / f"{name.removeprefix('guide-')}.json")
        for name, gateway in gateways.items()
    }


def assert_guide_logged(guide: Guide, case: str, provider: str) -> dict:
    """The request's one line is in the guide's file-log path (AIMW_LOG_PATH was not used)."""
    (line,) = exact_log_lines(guide.gateway, case)
    assert not guide.default_log_path.exists()
    assert line["response"]["status"] == 200
    assert line["ai"]["proxy"]["meta"]["provider_name"] == provider
    assert_no_secret(guide.gateway)
    return line


def test_hugging_face_guide(fakes, guides, case):
    """The guide's router target, with its pre-function dropping the client's model."""
    fakes.huggingface.enqueue(json_reply(completion("Hugging Face guide.", model=HF_MODEL, usage=(21, 4))))
    message = ask(guides["huggingface"].gateway, case)
    assert message.content[0].text == "Hugging Face guide."
    (sent,) = fakes.huggingface.requests_for(case)
    assert sent.headers["authorization"] == f"Bearer {HF_TOKEN}"
    assert sent.body["model"] == HF_MODEL
    line = assert_guide_logged(guides["huggingface"], case, "huggingface")
    assert line["ai"]["proxy"]["meta"]["request_model"] == HF_MODEL
    assert_log_usage(line, 21, 4)


def test_hugging_face_guides_pre_function_drops_the_clients_model(fakes, guides, case):
    """The guide without ``model.name``: had the pre-function not removed the client's model,
    the router would get ``claude-x`` (Kong's meaning of an absent name); it gets the
    provider's default model."""
    fakes.huggingface.enqueue(json_reply(completion("No client model.", model=HF_MODEL)))
    message = ask(guides["huggingface-unnamed"].gateway, case, model="claude-sonnet-4-5")
    assert message.content[0].text == "No client model."
    (sent,) = fakes.huggingface.requests_for(case)
    assert sent.body["model"] == HF_MODEL
    assert "claude" not in json.dumps(sent.body)
    line = assert_guide_logged(guides["huggingface-unnamed"], case, "huggingface")
    assert line["ai"]["proxy"]["meta"]["request_model"] == HF_MODEL


def test_anthropic_guide(fakes, guides, case):
    """The pass-through: the client's own key and model reach Anthropic; the guide's
    max_request_body_size (512 KiB) refuses a larger body before any provider sees it."""
    fakes.anthropic.enqueue(message_reply("Anthropic guide.", input_tokens=17, output_tokens=3))
    message = ask(guides["anthropic"].gateway, case)
    assert message.content[0].text == "Anthropic guide."
    (sent,) = fakes.anthropic.requests_for(case)
    assert sent.headers["authorization"] == f"Bearer {CLIENT_KEY}"  # the SDK's own header, passed through
    assert sent.body["model"] == MODEL
    line = assert_guide_logged(guides["anthropic"], case, "anthropic")
    assert_log_usage(line, 17, 3)

    big = [{"role": "user", "content": "x" * (600 * 1024)}]
    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(guides["anthropic"].gateway, case, messages=big)
    assert caught.value.status_code == 413
    assert len(fakes.anthropic.requests_for(case)) == 1


def test_azure_guide(fakes, guides, case):
    """The deployment's URL with the guide's api-version, the key as Authorization: Bearer,
    the guide's log_payloads in the log line."""
    fakes.azure_bearer.enqueue(json_reply(azure_completion("Azure guide.", usage=(19, 6))))
    message = ask(guides["azure"].gateway, case)
    assert message.content[0].text == "Azure guide."
    (sent,) = fakes.azure_bearer.requests_for(case)
    assert (sent.path, sent.query) == (AZURE_URI, f"api-version={AZURE_API_VERSION}")
    assert sent.headers["authorization"] == f"Bearer {AZURE_KEY}" and "api-key" not in sent.headers
    line = assert_guide_logged(guides["azure"], case, "azure")
    meta = line["ai"]["proxy"]["meta"]
    assert (meta["azure_instance_id"], meta["azure_deployment_id"]) == (AZURE_INSTANCE, AZURE_DEPLOYMENT)
    assert "Azure guide." in line["ai"]["proxy"]["payload"]["response"]
    assert_log_usage(line, 19, 6)


def test_dashscope_guide(fakes, guides, case):
    """qwen-plus with the guide's max_tokens cap (8192) and temperature (1.0)."""
    fakes.dashscope.enqueue(json_reply(dashscope_completion("DashScope guide.", usage=(23, 5))))
    message = ask(guides["dashscope"].gateway, case, max_tokens=32000)
    assert message.content[0].text == "DashScope guide."
    (sent,) = fakes.dashscope.requests_for(case)
    assert sent.headers["authorization"] == f"Bearer {DASHSCOPE_KEY}"
    assert (sent.body["model"], sent.body["max_tokens"], sent.body["temperature"]) == (DASHSCOPE_MODEL, 8192, 1.0)
    line = assert_guide_logged(guides["dashscope"], case, "dashscope")
    assert_log_usage(line, 23, 5)


def test_vertex_guide(fakes, guides, servers, case):
    """Vertex AI's resource path, an access token fetched with the guide's service-account
    key from the (fake) Google token endpoint, the guide's max_tokens 8192."""
    fakes.vertex.enqueue(json_reply(text_response("Vertex guide.", usage=(27, 8))))
    message = ask(guides["vertex"].gateway, case, max_tokens=32000)
    assert message.content[0].text == "Vertex guide."
    (sent,) = fakes.vertex.requests_for(case)
    assert (
        sent.path
        == f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{GEMINI_MODEL}:generateContent"
    )
    token = sent.headers["authorization"].removeprefix("Bearer ")
    assert servers.oauth.account_of(token) == VERTEX_ACCOUNT
    assert sent.body["generationConfig"]["maxOutputTokens"] == 8192
    assert not servers.oauth.problems
    line = assert_guide_logged(guides["vertex"], case, "gemini")
    assert line["ai"]["proxy"]["meta"]["request_model"] == GEMINI_MODEL
    assert_log_usage(line, 27, 8)
    assert token not in guides["vertex"].gateway.log_text()
