"""hypothesis strategies for valid Anthropic Messages requests, as JSON-ready dicts.

Shapes from the Anthropic API reference ("Messages": the request body and its content
blocks; "Tool use": a tool name matches ``^[a-zA-Z0-9_-]{1,64}$``, a tool_use id
``^[a-zA-Z0-9_-]+$``, ``input_schema`` is an object schema, every tool_use of an assistant
turn is answered by a tool_result at the start of the next user turn; "Extended thinking":
budget_tokens at least 1024 and below max_tokens; "Search results", "Web search tool",
"Tool search tool") and from what Claude Code sends (../shared/CLAUDE-CODE.md: ``role:
"system"`` turns inside messages[], cache_control, thinking adaptive, metadata.user_id a JSON
string, context_management, output_config, deferred tools; tool schemas: json_schemas.py).
:func:`bent_requests` bends valid requests past those rules, as clients do.

A few valid forms have no Chat Completions or Gemini equivalent: Files API sources
(``file``) and ``content`` document sources. :func:`unsendable` says whether a request holds
one: only then may a translator refuse it (with its GatewayError).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.json_schemas import ALNUM, ANY_TEXT, JSON_VALUE, TEXT, TOOL_NAME, input_schema, optional

SIGNATURE = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=", min_size=1, max_size=40)
TOOL_ID = st.one_of(
    st.text(ALNUM, min_size=24, max_size=24).map("toolu_".__add__),  # what Anthropic's API makes
    st.text("0123456789abcdef", min_size=32, max_size=32).map("chatcmpl-tool-".__add__),  # vLLM's, 46 characters
    st.text(ALNUM + "_-", min_size=1, max_size=64),  # any id a client may send
)
TOOL_INPUT = st.dictionaries(ANY_TEXT, JSON_VALUE, max_size=3)
CACHE_CONTROL = st.just({"type": "ephemeral"})
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


# ---------------------------------------------------------------- content blocks

TEXT_BLOCK = st.fixed_dictionaries(
    {"type": st.just("text"), "text": TEXT}, optional=optional(cache_control=CACHE_CONTROL)
)
_BASE64 = st.binary(min_size=1, max_size=24).map(lambda data: base64.b64encode(data).decode())
_URL = st.builds(
    "https://example.com/{}{}{}".format,
    st.text("abcxyz019/", max_size=12),
    st.sampled_from(["", ".png", ".JPG", ".jpeg", ".gif", ".webp", ".pdf"]),
    st.sampled_from(["", "?x=1"]),
)
_FILE_SOURCE = st.just({"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"})
_IMAGE_SOURCES = [
    st.fixed_dictionaries({"type": st.just("base64"), "media_type": st.sampled_from(IMAGE_TYPES), "data": _BASE64}),
    st.fixed_dictionaries({"type": st.just("url"), "url": _URL}),
]
_DOCUMENT_SOURCES = [
    st.fixed_dictionaries({"type": st.just("text"), "media_type": st.just("text/plain"), "data": TEXT}),
    st.fixed_dictionaries({"type": st.just("base64"), "media_type": st.just("application/pdf"), "data": _BASE64}),
    st.fixed_dictionaries({"type": st.just("url"), "url": _URL}),
]
_UNSENDABLE_DOCUMENT_SOURCES = [
    _FILE_SOURCE,
    st.fixed_dictionaries({"type": st.just("content"), "content": st.lists(TEXT_BLOCK, min_size=1, max_size=2)}),
]
_DOCUMENT_FIELDS = optional(
    title=st.one_of(st.none(), TEXT), context=TEXT, citations=st.builds(lambda on: {"enabled": on}, st.booleans())
)
SEARCH_RESULT = st.fixed_dictionaries(
    {
        "type": st.just("search_result"),
        "source": _URL,
        "title": TEXT,
        "content": st.lists(TEXT_BLOCK, min_size=1, max_size=2),
    }
)


def _media_blocks(files: bool) -> list[st.SearchStrategy[dict[str, Any]]]:
    """Image and document blocks; with ``files`` their unsendable sources too."""
    image = st.one_of([*_IMAGE_SOURCES, _FILE_SOURCE] if files else _IMAGE_SOURCES)
    document = st.one_of(_DOCUMENT_SOURCES + (_UNSENDABLE_DOCUMENT_SOURCES if files else []))
    return [
        st.fixed_dictionaries(
            {"type": st.just("image"), "source": image}, optional=optional(cache_control=CACHE_CONTROL)
        ),
        st.fixed_dictionaries({"type": st.just("document"), "source": document}, optional=_DOCUMENT_FIELDS),
    ]


USER_BLOCKS = {files: st.one_of(TEXT_BLOCK, SEARCH_RESULT, *_media_blocks(files)) for files in (False, True)}
"""What a user turn holds besides tool_results, by ``files``."""
RESULT_CONTENT = {files: st.one_of(ANY_TEXT, st.lists(USER_BLOCKS[files], max_size=3)) for files in (False, True)}
"""A tool_result's content (string, or text, image, document and search_result blocks), by ``files``."""
_RESULT_FIELDS = st.fixed_dictionaries({}, optional=optional(is_error=st.booleans(), cache_control=CACHE_CONTROL))
THINKING = st.one_of(
    st.fixed_dictionaries({"type": st.just("thinking"), "thinking": ANY_TEXT, "signature": SIGNATURE}),
    st.fixed_dictionaries({"type": st.just("redacted_thinking"), "data": SIGNATURE}),
)
_WEB_SEARCH_RESULT = st.one_of(
    st.lists(
        st.fixed_dictionaries(
            {"type": st.just("web_search_result"), "url": _URL, "title": TEXT, "encrypted_content": SIGNATURE},
            optional=optional(page_age=st.just("2 days ago")),
        ),
        max_size=2,
    ),
    st.just({"type": "web_search_tool_result_error", "error_code": "max_uses_exceeded"}),
)
_ANTHROPIC_ID = st.text(ALNUM, min_size=24, max_size=24)


def _tool_result(draw: st.DrawFn, tool_use_id: str, files: bool, tool_names: list[str]) -> dict[str, Any]:
    """The answer to ``tool_use_id``; it may say a deferred tool is loaded (tool_reference)."""
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id, **draw(_RESULT_FIELDS)}
    if draw(st.booleans()):
        content = draw(RESULT_CONTENT[files])
        if tool_names and isinstance(content, list) and draw(st.booleans()):
            content.append({"type": "tool_reference", "tool_name": draw(st.sampled_from(tool_names))})
        block["content"] = content
    return block


def _server_tool_turn(draw: st.DrawFn, used_ids: set[str]) -> list[dict[str, Any]]:
    """A web search that ran on Anthropic's servers: server_tool_use and its result."""
    tool_id = _unique("srvtoolu_" + draw(_ANTHROPIC_ID), used_ids)
    return [
        {"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {"query": draw(TEXT)}},
        {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": draw(_WEB_SEARCH_RESULT)},
    ]


def _unique(candidate: str, used: set[str]) -> str:
    """``candidate``, changed until no earlier id of the request has it (ids are unique)."""
    number = 0
    while candidate in used:
        number += 1
        candidate = f"{candidate[:56]}_{number}"
    used.add(candidate)
    return candidate


# ---------------------------------------------------------------- turns and requests


def _assistant_turn(
    draw: st.DrawFn, tool_names: list[str], used_ids: set[str], last: bool
) -> tuple[dict[str, Any], list[str]]:
    """An assistant turn and the ids of its tool_use blocks (none in a last, prefilled turn)."""
    if draw(st.booleans()):
        return {"role": "assistant", "content": draw(TEXT)}, []
    blocks: list[dict[str, Any]] = draw(st.lists(THINKING, max_size=2))
    blocks += draw(st.lists(TEXT_BLOCK, max_size=2))
    if draw(st.integers(0, 4)) == 0:
        blocks += _server_tool_turn(draw, used_ids)
    calls: list[str] = []
    if not last:
        for _ in range(draw(st.integers(0, 3))):
            call_id = _unique(draw(TOOL_ID), used_ids)
            name = draw(st.sampled_from(tool_names) if tool_names else TOOL_NAME)
            blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": draw(TOOL_INPUT)})
            calls.append(call_id)
    if not blocks:
        blocks = [draw(TEXT_BLOCK)]
    return {"role": "assistant", "content": blocks}, calls


def _user_turn(draw: st.DrawFn, pending: list[str], files: bool, tool_names: list[str]) -> dict[str, Any]:
    """A user turn: the answers to ``pending`` first (in any order), then other blocks."""
    if not pending and draw(st.booleans()):
        return {"role": "user", "content": draw(TEXT)}
    blocks = [_tool_result(draw, call_id, files, tool_names) for call_id in draw(st.permutations(pending))]
    blocks += draw(st.lists(USER_BLOCKS[files], min_size=0 if pending else 1, max_size=3))
    return {"role": "user", "content": blocks}


SYSTEM_TURN = st.builds(
    lambda content: {"role": "system", "content": content},
    st.one_of(TEXT, st.lists(TEXT_BLOCK, min_size=1, max_size=2)),
)
"""One of Claude Code's ``role: "system"`` turns inside messages[]."""


def _conversation(draw: st.DrawFn, tool_names: list[str], files: bool) -> list[dict[str, Any]]:
    """user, assistant, user ... (the last turn either), with Claude Code's system turns anywhere
    after the first."""
    turns = draw(st.integers(1, 5))
    messages: list[dict[str, Any]] = []
    used_ids: set[str] = set()
    pending: list[str] = []
    for index in range(turns):
        if index and draw(st.integers(0, 3)) == 0:
            messages.append(draw(SYSTEM_TURN))
        if index % 2 == 0:
            messages.append(_user_turn(draw, pending, files, tool_names))
            pending = []
        else:
            turn, pending = _assistant_turn(draw, tool_names, used_ids, last=index == turns - 1)
            messages.append(turn)
    return messages


_SERVER_TOOLS = st.sampled_from(
    [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
    ]
)
_TOOL_FIELDS = st.fixed_dictionaries(
    {}, optional=optional(description=ANY_TEXT, cache_control=CACHE_CONTROL, defer_loading=st.booleans())
)


def _tools(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Client tools (some deferred), maybe a server tool; names unique."""
    names = draw(st.lists(TOOL_NAME, unique=True, max_size=3))
    tools = [{"name": name, "input_schema": input_schema(draw), **draw(_TOOL_FIELDS)} for name in names]
    if draw(st.booleans()):
        server = draw(_SERVER_TOOLS)
        if server["name"] not in names:
            tools.append(server)
    return tools


_CLAUDE_CODE_USER = st.builds(
    lambda device, session: json.dumps({"device_id": device, "account_uuid": "", "session_id": session}),
    st.text("0123456789abcdef", min_size=64, max_size=64),
    st.uuids().map(str),
)
_FIELDS = st.fixed_dictionaries(
    {},
    optional=optional(
        system=st.one_of(ANY_TEXT, st.lists(TEXT_BLOCK, max_size=3)),
        temperature=st.floats(0, 1),
        top_p=st.floats(0, 1),
        top_k=st.one_of(st.just(0), st.integers(1, 500)),
        stop_sequences=st.lists(TEXT.filter(lambda s: not s.isspace()), max_size=7),
        stream=st.booleans(),
        metadata=st.one_of(
            st.just({}), st.builds(lambda user: {"user_id": user}, st.one_of(st.none(), ANY_TEXT, _CLAUDE_CODE_USER))
        ),
        context_management=st.just({"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}),
        output_config=st.just({"effort": "high"}),
        service_tier=st.just("auto"),
    ),
)
_OTHER_THINKING = st.sampled_from(
    [{"type": "adaptive"}, {"type": "adaptive", "display": "omitted"}, {"type": "disabled"}]
)


def _thinking(draw: st.DrawFn, max_tokens: int) -> dict[str, Any]:
    """adaptive, disabled, or enabled with a budget of 1024 tokens or more, below max_tokens."""
    if max_tokens > 1024 and draw(st.booleans()):
        return {"type": "enabled", "budget_tokens": draw(st.integers(1024, max_tokens - 1))}
    return draw(_OTHER_THINKING)


def _tool_choice(draw: st.DrawFn, tools: list[dict[str, Any]]) -> dict[str, Any]:
    """auto or none; any or a named tool only when there is a client tool to choose."""
    choosable = [tool["name"] for tool in tools if "type" not in tool and not tool.get("defer_loading")]
    kinds = ["auto", "none", "any", "tool"] if choosable else ["auto", "none"]
    choice: dict[str, Any] = {"type": draw(st.sampled_from(kinds))}
    if choice["type"] == "tool":
        choice["name"] = draw(st.sampled_from(choosable))
    if choice["type"] != "none" and draw(st.booleans()):
        choice["disable_parallel_tool_use"] = draw(st.booleans())
    return choice


@st.composite
def messages_requests(draw: st.DrawFn, *, files: bool = True) -> dict[str, Any]:
    """A valid Messages request body. ``files``: may hold the forms :func:`unsendable` names."""
    tools = _tools(draw)
    client_names = [tool["name"] for tool in tools if "type" not in tool]
    body: dict[str, Any] = {"model": draw(st.sampled_from(["claude-sonnet-4-5", "gw-test-model"]))}
    body["messages"] = _conversation(draw, client_names, files)
    body.update(draw(_FIELDS))
    if draw(st.booleans()):
        body["max_tokens"] = draw(st.one_of(st.sampled_from([32000, 128000]), st.integers(1, 128000)))  # Claude Code's
    if draw(st.booleans()):
        body["thinking"] = _thinking(draw, body.get("max_tokens", 4096))
    if tools:
        body["tools"] = tools
    if draw(st.booleans()):
        body["tool_choice"] = _tool_choice(draw, tools)
    return body


def unsendable(body: dict[str, Any]) -> bool:
    """Whether ``body`` holds a form no translator can send: an image or document whose
    source is a Files API ``file`` or a document's ``content`` (in a turn or a tool_result)."""
    blocks = [
        block for message in body["messages"] if isinstance(message["content"], list) for block in message["content"]
    ]
    blocks += [
        inner
        for block in blocks
        if block["type"] == "tool_result" and isinstance(block.get("content"), list)
        for inner in block["content"]
    ]
    return any(
        block["type"] in ("image", "document") and block["source"]["type"] in ("file", "content") for block in blocks
    )


# ---------------------------------------------------------------- past the rules

_MUTATIONS = st.lists(
    st.sampled_from(
        ["drop_result", "orphan_result", "empty_text", "assistant_first", "system_first", "repeat_turn", "empty_turn"]
    ),
    min_size=1,
    max_size=3,
)


@st.composite
def bent_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A valid request bent past Anthropic's rules in ways clients do and the translators say
    they take: a tool_use left unanswered, a tool_result answering no call, empty texts, a
    conversation opening with the assistant or a system turn, two turns of one role in a row,
    a turn with no content."""
    body = draw(messages_requests(files=False))
    messages: list[dict[str, Any]] = body["messages"]
    for mutation in draw(_MUTATIONS):
        index = draw(st.integers(0, len(messages) - 1))
        message = messages[index]
        blocks = message["content"] if isinstance(message["content"], list) else None
        if mutation == "drop_result" and blocks:
            message["content"] = [b for b in blocks if b["type"] != "tool_result"] or [{"type": "text", "text": "x"}]
        elif mutation == "orphan_result" and message["role"] == "user":
            orphan = {"type": "tool_result", "tool_use_id": draw(TOOL_ID), "content": draw(ANY_TEXT)}
            message["content"] = [
                orphan,
                *(blocks if blocks is not None else [{"type": "text", "text": message["content"]}]),
            ]
        elif mutation == "empty_text":
            messages.insert(
                index, {"role": message["role"], "content": draw(st.sampled_from(["", [{"type": "text", "text": ""}]]))}
            )
        elif mutation == "assistant_first":
            messages.insert(0, {"role": "assistant", "content": draw(TEXT)})
        elif mutation == "system_first":
            messages.insert(0, draw(SYSTEM_TURN))
        elif mutation == "repeat_turn" and blocks is None:  # tool_use ids stay unique
            messages.insert(index, dict(message))
        elif mutation == "empty_turn":
            messages.insert(index, {"role": message["role"], "content": []})
    return body
