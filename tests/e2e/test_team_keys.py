"""A team gateway's keys end to end (issue 12, Kong's key-auth): real Hypercorn processes
serving recipes with consumers, fakes of the providers on loopback, and real clients (the
Anthropic Python SDK, httpx, the Claude Code CLI).

- recipes.huggingface with ``AIMW_CONSUMERS`` (a consumers file: alice's key plain, bob's
  stored as ``sha256:<hex>``, carol's from the environment): each key admits its holder, as
  x-api-key (ANTHROPIC_API_KEY) or Authorization: Bearer (ANTHROPIC_AUTH_TOKEN); a wrong or
  missing key is a 401 the SDK does not retry, and nothing reaches the provider.
- recipes.config with the consumers in the configuration file (dave's key written
  ``${{ env "DECK_DAVE_KEY" }}``): the same admission, another gateway's key refused.
- recipes.anthropic with consumers: the pass-through sends Anthropic the gateway's key, never
  the consumer's; without a key of its own it refuses to start.
- The real Claude Code CLI runs a prompt with its key, and gets the 401 with a wrong one.

After every test no consumer key is in any gateway's log file or output, nor in any header
or body the fakes received.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

import anthropic
from aimw.gateway import OPEN_GATEWAY
from tests.e2e.harness import (
    CLIENT_KEY,
    HF_MODEL,
    HF_TOKEN,
    GatewayProcess,
    checked_fake,
    exact_log_lines,
    run_claude,
    running_gateway,
)
from tests.fakes.anthropic_server import FakeAnthropicServer, count_tokens_reply, message_reply
from tests.fakes.openai_chat_server import FakeChatServer, completion, json_reply, text_stream

pytestmark = pytest.mark.e2e

ALICE_KEY = CLIENT_KEY  # what run_claude sends (ANTHROPIC_API_KEY)
BOB_KEY = "aimw-team-bob-" + "3b8e0f6a1c7d2e94"  # in the consumers file only as its SHA-256
CAROL_KEY = "aimw-team-carol-" + "a61f9c0d2b7e5384"  # in the gateway's environment
DAVE_KEY = "aimw-team-dave-" + "50c2e8a7f1d93b46"  # the config recipe's consumer
WRONG_KEY = "aimw-team-mallory-" + "9e7d5c3b1a0f2e4d"
CONSUMER_KEYS = (ALICE_KEY, BOB_KEY, CAROL_KEY, DAVE_KEY, WRONG_KEY)
ANTHROPIC_KEY = "sk-ant-gateway-" + "4f2a9c7e1b0d8e63"  # the pass-through's own key
USER = [{"role": "user", "content": "Who am I?"}]

CONSUMERS = {
    "consumers": [
        {"username": "alice", "keyauth_credentials": [{"key": ALICE_KEY}]},
        {
            "username": "bob",
            "custom_id": "team-backend",
            "keyauth_credentials": [{"key": "sha256:" + hashlib.sha256(BOB_KEY.encode()).hexdigest()}],
        },
        {"username": "carol", "keyauth_credentials": [{"key": "${CAROL_KEY}"}]},
    ]
}


@dataclass
class TeamServers:
    router: FakeChatServer
    anthropic: FakeAnthropicServer
    hf: GatewayProcess  # recipes.huggingface, AIMW_CONSUMERS
    config: GatewayProcess  # recipes.config, consumers in the file
    passthrough: GatewayProcess  # recipes.anthropic, AIMW_CONSUMERS and ANTHROPIC_API_KEY
    consumers_path: Path

    @property
    def gateways(self) -> list[GatewayProcess]:
        return [self.hf, self.config, self.passthrough]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TeamServers]:
    files = tmp_path_factory.mktemp("team-keys")
    consumers_path = files / "consumers.yaml"
    consumers_path.write_text(yaml.safe_dump(CONSUMERS), encoding="utf-8")
    with ExitStack() as stack:
        router = stack.enter_context(FakeChatServer(HF_TOKEN))
        fake_anthropic = stack.enter_context(FakeAnthropicServer(ANTHROPIC_KEY))
        config_path = files / "gateway.yaml"
        config_path.write_text(
            yaml.safe_dump(
                {
                    "llm_format": "anthropic",
                    "targets": [
                        {
                            "auth": {"header_name": "Authorization", "header_value": "Bearer ${HUGGINGFACE_API_TOKEN}"},
                            "model": {
                                "provider": "huggingface",
                                "name": HF_MODEL,
                                "options": {"upstream_url": f"{router.url}/v1/chat/completions"},
                            },
                        }
                    ],
                    "consumers": [{"username": "dave", "keyauth_credentials": [{"key": '${{ env "DECK_DAVE_KEY" }}'}]}],
                }
            ),
            encoding="utf-8",
        )
        keyed = {"AIMW_CONSUMERS": str(consumers_path), "CAROL_KEY": CAROL_KEY}
        hf = stack.enter_context(
            running_gateway(
                "recipes.huggingface:app",
                {"HUGGINGFACE_API_TOKEN": HF_TOKEN, "AIMW_UPSTREAM_URL": router.url, **keyed},
                tmp_path_factory,
                "team-hf",
            )
        )
        config = stack.enter_context(
            running_gateway(
                "recipes.config:app",
                {"AIMW_CONFIG": str(config_path), "HUGGINGFACE_API_TOKEN": HF_TOKEN, "DECK_DAVE_KEY": DAVE_KEY},
                tmp_path_factory,
                "team-config",
            )
        )
        passthrough = stack.enter_context(
            running_gateway(
                "recipes.anthropic:app",
                {"AIMW_UPSTREAM_URL": fake_anthropic.url, "ANTHROPIC_API_KEY": ANTHROPIC_KEY, **keyed},
                tmp_path_factory,
                "team-anthropic",
            )
        )
        yield TeamServers(router, fake_anthropic, hf, config, passthrough, consumers_path)


@pytest.fixture
def team(servers: TeamServers, request: pytest.FixtureRequest) -> Iterator[TeamServers]:
    """The module's servers, fakes emptied; afterwards the usual checks (gateways up, no
    traceback, nothing the fakes rejected, every reply used) and no consumer key anywhere:
    not in a log file or a gateway's output, not in what the fakes received."""
    with (
        checked_fake(servers.router, servers.gateways, request),
        checked_fake(servers.anthropic, servers.gateways, request),
    ):
        yield servers
        received = [*servers.router.requests, *servers.anthropic.requests]
    for key in CONSUMER_KEYS:
        for gateway in servers.gateways:
            assert key not in gateway.log_text(), f"a consumer key in {gateway.app}'s log"
            assert key not in gateway.output(), f"a consumer key in {gateway.app}'s output"
        for sent in received:
            assert all(key not in value for value in sent.headers.values()), sent.headers
            assert key.encode() not in sent.raw_body


def client(gateway: GatewayProcess, case: str, key: str, form: str) -> anthropic.Anthropic:
    """The SDK sending ``key`` in ``form``: ``bearer`` (its ``auth_token``, Authorization:
    Bearer; this SDK sends its ``api_key`` so too) or ``x-api-key`` (the header as Claude
    Code sends ANTHROPIC_API_KEY)."""
    headers = {"x-e2e-case": case, **({"x-api-key": key} if form == "x-api-key" else {})}
    return anthropic.Anthropic(
        base_url=gateway.url,
        auth_token=key if form == "bearer" else None,
        max_retries=0,
        timeout=30.0,
        default_headers=headers,
        http_client=anthropic.DefaultHttpxClient(trust_env=False),
    )


def assert_consumer(line: dict, username: str) -> None:
    """The log line names ``username`` in Kong's fields, with UUID ids."""
    assert line["consumer"]["username"] == username
    assert len(line["consumer"]["id"]) == 36 and len(line["authenticated_entity"]["id"]) == 36


# ---------------------------------------------------------------- admitted


@pytest.mark.parametrize(
    ("key", "form", "username"),
    [
        (ALICE_KEY, "x-api-key", "alice"),  # the key plain in the file
        (ALICE_KEY, "bearer", "alice"),
        (BOB_KEY, "bearer", "bob"),  # the key hashed in the file
        (BOB_KEY, "x-api-key", "bob"),
        (CAROL_KEY, "x-api-key", "carol"),  # the key from the gateway's environment
    ],
    ids=("alice-x-api-key", "alice-bearer", "bob-bearer", "bob-x-api-key", "carol-x-api-key"),  # ids hold no key
)
def test_each_key_admits_its_consumer(team: TeamServers, case, key, form, username):
    team.router.enqueue(json_reply(completion(f"You are {username}.", usage=(12, 4))))

    message = client(team.hf, case, key, form).messages.create(model="claude-x", max_tokens=64, messages=USER)

    assert message.content[0].text == f"You are {username}."
    (sent,) = team.router.requests_for(case)
    assert sent.headers["authorization"] == f"Bearer {HF_TOKEN}"  # the provider's credential replaced it
    assert "x-api-key" not in sent.headers
    (line,) = exact_log_lines(team.hf, case)
    assert line["response"]["status"] == 200
    assert_consumer(line, username)
    assert line["request"]["headers"]["x-api-key" if form == "x-api-key" else "authorization"] == "REDACTED"
    if username == "bob":
        assert line["consumer"]["custom_id"] == "team-backend"


def test_a_stream_with_a_bearer_key(team: TeamServers, case):
    team.router.enqueue(text_stream(("Streamed ", "for ", "bob."), usage=(30, 3)))

    with client(team.hf, case, BOB_KEY, "bearer").messages.stream(
        model="claude-x", max_tokens=64, messages=USER
    ) as stream:
        text = stream.get_final_text()

    assert text == "Streamed for bob."
    (line,) = exact_log_lines(team.hf, case)
    assert_consumer(line, "bob")
    assert line["ai"]["proxy"]["meta"]["request_mode"] == "stream"


# ---------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("key", "form"),
    [(WRONG_KEY, "x-api-key"), (WRONG_KEY, "bearer"), (DAVE_KEY, "x-api-key")],
    ids=("unknown-x-api-key", "unknown-bearer", "another-gateways-key"),
)
def test_a_wrong_key_is_401_not_retried_and_nothing_goes_upstream(team: TeamServers, case, key, form):
    output_before = len(team.hf.output())

    with pytest.raises(anthropic.AuthenticationError) as caught:
        client(team.hf, case, key, form).messages.create(model="claude-x", max_tokens=64, messages=USER)

    assert caught.value.status_code == 401
    assert caught.value.body["error"] == {
        "type": "authentication_error",
        "message": "Invalid authentication credentials",
    }
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert team.router.requests_for(case) == []
    (line,) = exact_log_lines(team.hf, case)
    assert line["response"]["status"] == 401
    assert "consumer" not in line and "authenticated_entity" not in line
    where = "x-api-key" if form == "x-api-key" else "Authorization: Bearer"
    assert f"unknown key in {where}" in team.hf.output()[output_before:]


def test_no_key_is_401_saying_where_to_send_it(team: TeamServers, case):
    response = httpx.post(
        f"{team.hf.url}/v1/messages",
        json={"model": "claude-x", "max_tokens": 64, "messages": USER},
        headers={"anthropic-version": "2023-06-01", "x-e2e-case": case},
        trust_env=False,
    )

    assert response.status_code == 401
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["type"] == "authentication_error"
    assert "x-api-key or Authorization: Bearer" in error["message"]
    assert team.router.requests_for(case) == []
    assert exact_log_lines(team.hf, case)[0]["response"]["status"] == 401


def test_preflight_head_needs_no_key_and_count_tokens_does(team: TeamServers, case):
    """Claude Code's pre-flight HEAD carries no key; its count_tokens carries one."""
    headers = {"content-type": "application/json", "x-e2e-case": case}
    body = {"model": "claude-x", "messages": USER}
    with httpx.Client(base_url=team.hf.url, trust_env=False) as http:
        assert http.head("/api/hello", headers=headers).status_code == 200
        assert http.post("/v1/messages/count_tokens", json=body, headers=headers).status_code == 401
        keyed = http.post("/v1/messages/count_tokens", json=body, headers={**headers, "x-api-key": ALICE_KEY})
    assert keyed.status_code == 200 and keyed.json()["input_tokens"] > 0
    assert [line["response"]["status"] for line in exact_log_lines(team.hf, case, 3)] == [200, 401, 200]


# ---------------------------------------------------------------- the config recipe


def test_the_config_files_consumers(team: TeamServers, case):
    team.router.enqueue(json_reply(completion("You are dave.", usage=(12, 4))))

    message = client(team.config, case, DAVE_KEY, "x-api-key").messages.create(
        model="claude-x", max_tokens=64, messages=USER
    )
    with pytest.raises(anthropic.AuthenticationError):  # alice's key is the other gateway's
        client(team.config, case, ALICE_KEY, "x-api-key").messages.create(
            model="claude-x", max_tokens=64, messages=USER
        )

    assert message.content[0].text == "You are dave."
    (sent,) = team.router.requests_for(case)
    assert sent.headers["authorization"] == f"Bearer {HF_TOKEN}"
    admitted, refused = exact_log_lines(team.config, case, 2)
    assert_consumer(admitted, "dave")
    assert refused["response"]["status"] == 401


def test_keyed_gateways_do_not_say_they_are_open(team: TeamServers):
    for gateway in team.gateways:
        assert OPEN_GATEWAY not in gateway.output()


# ---------------------------------------------------------------- the pass-through


@pytest.mark.parametrize(
    ("key", "form", "username"),
    [(ALICE_KEY, "x-api-key", "alice"), (BOB_KEY, "bearer", "bob")],
    ids=("alice-x-api-key", "bob-bearer"),
)
def test_the_pass_through_sends_its_own_key_never_the_consumers(team: TeamServers, case, key, form, username):
    """recipes.anthropic forwards the client's headers, but a consumer's key is the gateway's:
    Anthropic gets ANTHROPIC_API_KEY in x-api-key, and no authorization."""
    team.anthropic.enqueue(message_reply("Hello from Anthropic."), count_tokens_reply(11))
    sdk = client(team.passthrough, case, key, form)

    message = sdk.messages.create(model="claude-x", max_tokens=64, messages=USER)
    counted = sdk.messages.count_tokens(model="claude-x", messages=USER)

    assert message.content[0].text == "Hello from Anthropic." and counted.input_tokens == 11
    for sent in team.anthropic.requests_for(case):
        assert sent.headers["x-api-key"] == ANTHROPIC_KEY
        assert "authorization" not in sent.headers
    for line in exact_log_lines(team.passthrough, case, 2):
        assert_consumer(line, username)


def test_the_pass_through_refuses_to_start_without_its_own_key(servers: TeamServers, tmp_path):
    env = {"AIMW_CONSUMERS": str(servers.consumers_path), "CAROL_KEY": CAROL_KEY}
    gateway = GatewayProcess("recipes.anthropic:app", env, tmp_path)
    with pytest.raises(AssertionError, match="exited"):
        gateway.start()
    assert "must send its own anthropic key" in gateway.output()


# ---------------------------------------------------------------- the Claude Code CLI


def test_claude_code_with_its_key(claude_bin, team: TeamServers, case, tmp_path):
    team.router.enqueue(text_stream(("Keys ", "work."), usage=(900, 2)))

    completed, output = run_claude(claude_bin, team.hf.url, "Say something.", tmp_path, headers={"x-e2e-case": case})

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert output is not None and output["is_error"] is False and output["result"] == "Keys work."
    (line,) = exact_log_lines(team.hf, case)
    assert_consumer(line, "alice")


def test_claude_code_with_a_wrong_key_gets_the_401_at_once(claude_bin, team: TeamServers, case, tmp_path):
    """The config gateway does not know the CLI's key: the CLI fails with the 401 at once.
    It retries a 401 (ten times by default, for about 3 minutes) unless the answer says
    ``x-should-retry: false``: allowed two retries here, it still sends one request."""
    completed, output = run_claude(
        claude_bin,
        team.config.url,
        "Say something.",
        tmp_path,
        headers={"x-e2e-case": case},
        max_retries=2,
        api_key=ALICE_KEY,
    )
    assert completed.returncode != 0
    assert output["is_error"] is True and output["api_error_status"] == 401, completed.stdout[-2000:]
    assert team.router.requests_for(case) == []
    (line,) = exact_log_lines(team.config, case)  # one request: no retry
    assert line["response"]["status"] == 401
