"""The recipes end to end, one :class:`RecipeCase` each: how the recipe is served, how its fake
provider speaks, what the gateway must send the provider and write in its log.

test_recipe_scenarios.py runs the scenarios every recipe shares over this table; each
recipe's module keeps the tests only that recipe has, with the same gateways
(:class:`RecipeServers` starts each recipe's fake and gateway once per session).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import NamedTuple

import pytest

from tests.e2e.harness import CLIENT_KEY, HF_MODEL, HF_TOKEN, GatewayProcess, running_gateway
from tests.fakes.anthropic_server import FakeAnthropicServer, message_reply, stream_reply, text_events, tool_use_events
from tests.fakes.openai_chat_server import (
    AZURE_MODEL,
    CHAT_PATH,
    DASHSCOPE_MODEL,
    DASHSCOPE_PATH,
    OPENAI_MODEL,
    FakeChatServer,
    ToolCall,
    azure_completion,
    azure_profile,
    azure_rate_limited,
    azure_server_error,
    azure_text_stream,
    azure_tool_call_stream,
    completion,
    dashscope_completion,
    dashscope_rate_limited,
    dashscope_server_error,
    dashscope_stream,
    dashscope_tool_call_stream,
    hf_server_error,
    json_reply,
    openai_completion,
    openai_rate_limited,
    openai_server_error,
    rate_limited,
    reasoning_stream,
    text_stream,
    tool_call_stream,
)
from tests.fakes.openai_chat_server import DASHSCOPE as DASHSCOPE_PROFILE
from tests.fakes.openai_chat_server import OPENAI as OPENAI_PROFILE
from tests.fakes.scripted_server import Reply, ScriptedServer

AZURE_KEY = "3f9c2b7e" + "a1d04e6f8b5c9a2d7e1f3b4c"  # Azure keys are 32 hex digits
AZURE_INSTANCE = "aimw-e2e-resource"
AZURE_DEPLOYMENT = "gpt-4o-e2e"
AZURE_API_VERSION = "2025-01-01-preview"  # the recipe's default (Azure OpenAI REST reference)
AZURE_PROFILE = azure_profile(AZURE_DEPLOYMENT, AZURE_API_VERSION)
DASHSCOPE_KEY = "sk-" + "4c1e9a7b2d6f40e8a3b5c7d9e1f2a3b4"
DASHSCOPE_DEFAULT_MODEL = "qwen-plus"  # the recipe's default
DASHSCOPE_MAX_TOKENS = 8192  # Kong's Claude Code guide for DashScope: the cap and the temperature
DASHSCOPE_TEMPERATURE = 1.0
OPENAI_KEY = "sk-proj-" + "e2eT3stK3yQ9wX2vB7nM4pL6"
OPENAI_DEFAULT_MODEL = "gpt-4.1"  # the recipe's default
TGI_MODEL = "mistralai/Mistral-7B-Instruct-v0.2"  # what the router's TGI backend says answered
PROVIDER_KEYS = (HF_TOKEN, AZURE_KEY, DASHSCOPE_KEY, OPENAI_KEY)  # no log line may hold one


@dataclass(frozen=True)
class Usage:
    """One answer's token counts as the fake reports them; the log shows ``prompt_tokens``
    (cached tokens included) and ``output``."""

    input: int
    output: int
    cache_read: int = 0
    cache_creation: int = 0

    @property
    def prompt_tokens(self) -> int:
        return self.input + self.cache_read + self.cache_creation

    @property
    def chat(self) -> tuple[int, int]:
        """(prompt_tokens, completion_tokens), as an OpenAI-compatible provider reports them."""
        return self.prompt_tokens, self.output

    @property
    def anthropic_start(self) -> dict:
        """message_start's usage, as Anthropic reports it (output_tokens 1 so far)."""
        return {
            "input_tokens": self.input,
            "cache_creation_input_tokens": self.cache_creation,
            "cache_read_input_tokens": self.cache_read,
            "output_tokens": 1,
        }


@dataclass(frozen=True, kw_only=True)
class RecipeCase:
    """One recipe, served by ``hypercorn recipes.<name>:app``.

    env: the fake provider's URL -> the gateway's environment.
    new_fake: a fake provider checking what the real one checks.
    request_model: the model the gateway sends upstream and logs; None: the client's own.
    log_meta: what ai.proxy.meta of every log line holds (provider_name, request_model...).
    completion: (text, usage, **fields of the answer's message) -> a JSON answer.
    text_stream: (pieces, usage) -> a streamed text answer.
    tool_stream: (calls, text, pieces, usage) -> ``text``, then each call's arguments in
        ``pieces`` fragments.
    cli_usages: the token counts of a Claude Code session's two turns.
    """

    name: str
    env: Callable[[str], dict[str, str]]
    new_fake: Callable[[], ScriptedServer]
    request_model: str | None
    log_meta: dict
    completion: Callable[..., Reply]
    text_stream: Callable[[Sequence[str], Usage], Reply]
    tool_stream: Callable[[Sequence[ToolCall], Sequence[str], int, Usage], Reply]
    cli_usages: tuple[Usage, Usage]

    @property
    def app(self) -> str:
        return f"recipes.{self.name}:app"


@dataclass(frozen=True, kw_only=True)
class TranslatedRecipe(RecipeCase):
    """A recipe that translates Anthropic Messages to an OpenAI-compatible provider.

    key / wrong_key: the provider's key the gateway holds, and one the fake may want instead.
    path / query / auth: where every Messages request goes, with which credential header.
    response_model: the model the fake says answered.
    rate_limited: retry-after seconds -> a 429; server_error: 500 or 503 -> that answer.
    reasoning_stream: (reasoning, pieces, usage, reasoning_tokens) -> a streamed answer
        thinking first, for the providers that send ``reasoning_content``.
    body_defaults: fields the recipe sets on every request, whatever the client sent.
    oneshot_body: fields a request without streaming carries (None: absent).
    thinking_body: fields a request with thinking enabled (budget 2048) carries.
    cli_body: fields of the requests of a Claude Code session.
    """

    key: str
    wrong_key: str
    path: str = CHAT_PATH
    query: str = ""
    auth: tuple[str, str]
    response_model: str
    rate_limited: Callable[[str], Reply]
    server_error: Callable[[int], Reply]
    reasoning_stream: Callable[[Sequence[str], Sequence[str], Usage, int], Reply] | None = None
    body_defaults: dict = field(default_factory=dict)
    oneshot_body: dict = field(default_factory=dict)
    thinking_body: dict = field(default_factory=dict)
    cli_body: dict


def _meta(name: str, request_model: str | None, **extra: str) -> dict:
    return {"provider_name": name, **({"request_model": request_model} if request_model else {}), **extra}


ANTHROPIC = RecipeCase(
    name="anthropic",
    env=lambda url: {"AIMW_UPSTREAM_URL": url},
    new_fake=lambda: FakeAnthropicServer(CLIENT_KEY),  # no key of its own: the client's passes
    request_model=None,
    log_meta=_meta("anthropic", None),
    completion=lambda text, usage: message_reply(text, input_tokens=usage.input, output_tokens=usage.output),
    text_stream=lambda pieces, usage: stream_reply(
        text_events(pieces, start_usage=usage.anthropic_start, output_tokens=usage.output)
    ),
    tool_stream=lambda calls, text, pieces, usage: stream_reply(
        tool_use_events(
            calls[0].id,
            calls[0].name,
            calls[0].arguments,
            text=text,
            pieces=pieces,
            start_usage=usage.anthropic_start,
            output_tokens=usage.output,
        )
    ),
    cli_usages=(Usage(5, 40, cache_creation=1500), Usage(7, 15, cache_read=1500, cache_creation=100)),
)
AZURE = TranslatedRecipe(
    name="azure",
    env=lambda url: {
        "AZURE_OPENAI_API_KEY": AZURE_KEY,
        "AZURE_INSTANCE_NAME": AZURE_INSTANCE,
        "AZURE_DEPLOYMENT_ID": AZURE_DEPLOYMENT,
        "AIMW_UPSTREAM_URL": url,
    },
    new_fake=lambda: FakeChatServer(AZURE_KEY, AZURE_PROFILE),
    request_model=AZURE_DEPLOYMENT,
    log_meta=_meta(
        "azure",
        AZURE_DEPLOYMENT,
        azure_instance_id=AZURE_INSTANCE,
        azure_deployment_id=AZURE_DEPLOYMENT,
        azure_api_version=AZURE_API_VERSION,
    ),
    completion=lambda text, usage, **fields: json_reply(azure_completion(text, usage=usage.chat, **fields)),
    text_stream=lambda pieces, usage: azure_text_stream(
        pieces, usage=usage.chat, cached_tokens=usage.cache_read or None
    ),
    tool_stream=lambda calls, text, pieces, usage: azure_tool_call_stream(
        calls, text=text, pieces=pieces, usage=usage.chat
    ),
    key=AZURE_KEY,
    wrong_key="0" * 32,
    path=AZURE_PROFILE.path,
    query=AZURE_PROFILE.query,
    auth=("api-key", AZURE_KEY),
    response_model=AZURE_MODEL,
    rate_limited=azure_rate_limited,
    server_error=azure_server_error,
    cli_body={"max_tokens": 32000},
    cli_usages=(Usage(1500, 40), Usage(1600, 15)),
)
DASHSCOPE = TranslatedRecipe(
    name="dashscope",
    env=lambda url: {"DASHSCOPE_API_KEY": DASHSCOPE_KEY, "AIMW_UPSTREAM_URL": url},
    new_fake=lambda: FakeChatServer(DASHSCOPE_KEY, DASHSCOPE_PROFILE),
    request_model=DASHSCOPE_DEFAULT_MODEL,
    log_meta=_meta("dashscope", DASHSCOPE_DEFAULT_MODEL),
    completion=lambda text, usage, **fields: json_reply(dashscope_completion(text, usage=usage.chat, **fields)),
    text_stream=lambda pieces, usage: dashscope_stream(
        pieces, usage=usage.chat, cached_tokens=usage.cache_read or None
    ),
    tool_stream=lambda calls, text, pieces, usage: dashscope_tool_call_stream(
        calls, text=text, pieces=pieces, usage=usage.chat
    ),
    key=DASHSCOPE_KEY,
    wrong_key="sk-someOtherDashScopeKey0000",
    path=DASHSCOPE_PATH,
    auth=("authorization", f"Bearer {DASHSCOPE_KEY}"),
    response_model=DASHSCOPE_MODEL,
    rate_limited=dashscope_rate_limited,
    server_error=dashscope_server_error,
    reasoning_stream=lambda reasoning, pieces, usage, reasoning_tokens: dashscope_stream(
        pieces, reasoning=reasoning, usage=usage.chat, reasoning_tokens=reasoning_tokens
    ),
    body_defaults={"temperature": DASHSCOPE_TEMPERATURE},
    oneshot_body={"enable_thinking": False, "thinking_budget": None},  # never thinking off-stream
    thinking_body={"enable_thinking": True, "thinking_budget": 2048},
    cli_body={"max_tokens": DASHSCOPE_MAX_TOKENS, "temperature": DASHSCOPE_TEMPERATURE},
    cli_usages=(Usage(1500, 40), Usage(100, 15, cache_read=1500)),
)
HUGGINGFACE = TranslatedRecipe(
    name="huggingface",
    env=lambda url: {"HUGGINGFACE_API_TOKEN": HF_TOKEN, "AIMW_UPSTREAM_URL": url},
    new_fake=lambda: FakeChatServer(HF_TOKEN),
    request_model=HF_MODEL,
    log_meta=_meta("huggingface", HF_MODEL),
    completion=lambda text, usage, **fields: json_reply(completion(text, model=TGI_MODEL, usage=usage.chat, **fields)),
    text_stream=lambda pieces, usage: text_stream(
        pieces, model=TGI_MODEL, usage=usage.chat, cached_tokens=usage.cache_read or None
    ),
    tool_stream=lambda calls, text, pieces, usage: tool_call_stream(
        calls, text=text, pieces=pieces, usage=usage.chat, model=TGI_MODEL
    ),
    key=HF_TOKEN,
    wrong_key="hf_someOtherTokenTheRouterWants",
    auth=("authorization", f"Bearer {HF_TOKEN}"),
    response_model=TGI_MODEL,
    rate_limited=rate_limited,
    server_error=hf_server_error,
    reasoning_stream=lambda reasoning, pieces, usage, reasoning_tokens: reasoning_stream(
        reasoning, pieces, usage=usage.chat, reasoning_tokens=reasoning_tokens, model=TGI_MODEL
    ),
    cli_body={"max_tokens": 32000},
    cli_usages=(Usage(1500, 40), Usage(1600, 15)),
)
OPENAI = TranslatedRecipe(
    name="openai",
    env=lambda url: {"OPENAI_API_KEY": OPENAI_KEY, "AIMW_UPSTREAM_URL": url},
    new_fake=lambda: FakeChatServer(OPENAI_KEY, OPENAI_PROFILE),
    request_model=OPENAI_DEFAULT_MODEL,
    log_meta=_meta("openai", OPENAI_DEFAULT_MODEL),
    completion=lambda text, usage, **fields: json_reply(openai_completion(text, usage=usage.chat, **fields)),
    text_stream=lambda pieces, usage: text_stream(
        pieces, model=OPENAI_MODEL, usage=usage.chat, cached_tokens=usage.cache_read or None
    ),
    tool_stream=lambda calls, text, pieces, usage: tool_call_stream(
        calls, text=text, pieces=pieces, usage=usage.chat, model=OPENAI_MODEL
    ),
    key=OPENAI_KEY,
    wrong_key="sk-proj-someOtherKey000000",
    auth=("authorization", f"Bearer {OPENAI_KEY}"),
    response_model=OPENAI_MODEL,
    rate_limited=openai_rate_limited,
    server_error=openai_server_error,
    cli_body={"max_tokens": 32000},
    cli_usages=(Usage(1500, 40), Usage(1600, 15)),
)
RECIPES: dict[str, RecipeCase] = {recipe.name: recipe for recipe in (ANTHROPIC, AZURE, DASHSCOPE, HUGGINGFACE, OPENAI)}
TRANSLATED: list[TranslatedRecipe] = [recipe for recipe in RECIPES.values() if isinstance(recipe, TranslatedRecipe)]


def provider_message(reply: Reply) -> str:
    """The error message in a provider's error answer (OpenAI's ``error.message`` or TGI's ``error``)."""
    error = json.loads(reply.body)["error"]
    return error["message"] if isinstance(error, dict) else error


class Served(NamedTuple):
    recipe: RecipeCase
    fake: ScriptedServer
    gateway: GatewayProcess


class RecipeServers:
    """Each recipe's fake provider and gateway, started when first asked for and stopped
    with ``stack``."""

    def __init__(self, stack: ExitStack, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.stack = stack
        self.tmp_path_factory = tmp_path_factory
        self.served: dict[str, Served] = {}

    def __getitem__(self, name: str) -> Served:
        if name not in self.served:
            recipe = RECIPES[name]
            fake = self.stack.enter_context(recipe.new_fake())
            gateway = self.stack.enter_context(
                running_gateway(recipe.app, recipe.env(fake.url), self.tmp_path_factory, f"{name}-gateway")
            )
            self.served[name] = Served(recipe, fake, gateway)
        return self.served[name]
