"""deck files: the plugins read (ai-proxy, ai-proxy-advanced, file-log, the guides'
pre-function), where they may sit, what is refused, and errors named at the deck file's
own paths."""

from __future__ import annotations

import textwrap

import pytest

from aimw.config import load_config
from tests.config.support import problem
from tests.config.test_guides import HUGGINGFACE_GUIDE

AI_PROXY = """
  - name: ai-proxy
    config:
      llm_format: anthropic
      max_request_body_size: 65536
      model_name_header: false
      response_streaming: deny
      genai_category: text/generation
      route_type: llm/v1/chat
      model: {provider: openai, name: gpt-4.1}
"""
ADVANCED = """
  - name: ai-proxy-advanced
    config:
      llm_format: anthropic
      balancer: {algorithm: priority}
      targets:
        - model: {provider: openai, name: gpt-4.1}
        - model: {provider: huggingface}
"""


def deck(*plugins: str, head: str = '_format_version: "3.0"\nplugins:') -> str:
    return head + "".join(plugins)


def test_ai_proxy_is_one_target_and_the_top_level(write_config):
    config = load_config(write_config(deck(AI_PROXY)), {})
    assert (config.max_request_body_size, config.model_name_header, config.response_streaming) == (65536, False, "deny")
    [target] = config.targets
    assert (target.model.provider, target.model.name, target.route_type) == ("openai", "gpt-4.1", "llm/v1/chat")
    assert (config.log, config.strip_model) == (None, False)


def test_ai_proxy_advanced_config_is_the_document(write_config):
    config = load_config(write_config(deck(ADVANCED)), {})
    assert config.balancer.algorithm == "priority"
    assert [target.model.provider for target in config.targets] == ["openai", "huggingface"]


def test_plugins_of_services_and_routes_are_read(write_config):
    text = """
    _format_version: "3.0"
    services:
      - name: example-service
        url: http://httpbin.konghq.com/anything
        routes:
          - name: example-route
            paths: [/anything]
            plugins:
              - name: file-log
                config: {path: /tmp/claude.json, reopen: true}
        plugins:
          - name: ai-proxy
            config: {llm_format: anthropic, model: {provider: openai}}
    """
    config = load_config(write_config(textwrap.dedent(text)), {})
    assert config.log is not None and config.log.path == "/tmp/claude.json"
    assert config.targets[0].model.provider == "openai"


def test_a_disabled_plugin_is_skipped(write_config):
    disabled = "\n  - name: rate-limiting\n    enabled: false\n" + AI_PROXY.replace(
        "ai-proxy\n", "ai-proxy\n    enabled: false\n"
    )
    assert load_config(write_config(deck(ADVANCED, disabled)), {}).balancer.algorithm == "priority"


def test_the_guides_pre_function_whatever_its_spacing(write_config):
    respaced = HUGGINGFACE_GUIDE.replace("nil, 10485760)", "nil,   1048576 )").replace(
        "body.model = nil", "body.model=nil"
    )
    environ = {"DECK_HUGGINGFACE_API_TOKEN": "hf_guide_test_token_0123456789"}
    assert load_config(write_config(respaced), environ).strip_model is True


@pytest.mark.parametrize(
    ("plugins", "expected"),
    [
        ((), "plugins: expected one ai-proxy or ai-proxy-advanced plugin, found 0"),
        ((AI_PROXY, ADVANCED), "plugins: expected one ai-proxy or ai-proxy-advanced plugin, found 2"),
        (
            (AI_PROXY, "\n  - name: rate-limiting\n    config: {minute: 5}\n"),
            "plugins[1].name: the plugin 'rate-limiting' is not supported by aimw (it reads ai-proxy, "
            "ai-proxy-advanced, file-log and the guides' pre-function that removes model)",
        ),
        (
            ("\n  - name: pre-function\n    config: {access: ['kong.log.err(\"hi\")']}\n", AI_PROXY),
            "plugins[0].config: aimw runs no Lua: expected only the access snippet of Kong's guides that removes "
            "model from the body",
        ),
        (
            (
                AI_PROXY,
                "\n  - name: file-log\n    config: {path: /tmp/a.json, custom_fields_by_lua: {x: 'return 1'}}\n",
            ),
            "plugins[1].config.custom_fields_by_lua: aimw runs no Lua",
        ),
        (
            (AI_PROXY, "\n  - name: file-log\n    config: {path: /tmp/a.json, buffer: 4}\n"),
            "plugins[1].config.buffer: not supported by aimw's log (expected path, reopen)",
        ),
        ((AI_PROXY, "\n  - name: file-log\n    config: {reopen: true}\n"), "plugins[1].config.path: required"),
        (
            (
                ADVANCED.replace("llm_format: anthropic", "llm_format: anthropic\n      log: {path: /tmp/b}"),
                "\n  - name: file-log\n    config: {path: /tmp/a}\n",
            ),
            "plugins[1]: the log is given twice: by this plugin and by the config's log",
        ),
    ],
)
def test_what_a_deck_file_may_hold(write_config, plugins, expected):
    assert problem(write_config, deck(*plugins)) == expected


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("provider: openai, name", "provider: cohere, name"), "plugins[0].config.model.provider: expected one of"),
        (("route_type: llm/v1/chat", "route_typ: llm/v1/chat"), "plugins[0].config.route_typ: unknown field"),
        (("llm_format: anthropic", "llm_format: openai"), "plugins[0].config.llm_format: expected one of anthropic"),
        (("max_request_body_size: 65536", "max_request_body_size: -1"), "plugins[0].config.max_request_body_size: "),
        (("name: gpt-4.1", "name: '${MODEL}'"), "plugins[0].config.model.name: the environment variable MODEL is not"),
    ],
)
def test_errors_are_named_where_the_deck_file_writes_them(write_config, change, expected):
    assert problem(write_config, deck(AI_PROXY.replace(*change))).startswith(expected)


def test_file_log_errors_are_named_in_its_plugin(write_config):
    file_log = "\n  - name: file-log\n    config: {path: ''}\n"
    assert problem(write_config, deck(ADVANCED, file_log)) == "plugins[1].config.path: expected str of length >= 1"


def test_ai_proxy_advanced_errors_are_named_in_its_config(write_config):
    text = deck(ADVANCED.replace("provider: huggingface", "provider: huggingface, name: 7"))
    assert problem(write_config, text) == "plugins[0].config.targets[1].model.name: expected str | null, got int"
