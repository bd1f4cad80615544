"""Parallel tool calls whose fragments interleave, and text that comes while a call is open,
reassembled into one tool_use block at a time (openai_chat.tool_calls).

Anthropic's stream has one content block open at a time; some OpenAI-compatible servers
send the ``tool_calls`` fragments of parallel calls interleaved (index 0, 1, 0, 1 ...). The
first call streams as it comes, the others are held and follow, each as its own complete
block in index order, when the first one's block closes. Streams are driven and checked as
in test_openai_chat_stream.py (re-split at random offsets, the shared validator, the
Anthropic SDK's accumulator).
"""

from __future__ import annotations

import json
import random
import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimw.sse import SSEDecoder
from aimw.translators.openai_chat import ChatStreamTranslator
from aimw.translators.openai_chat.tool_calls import MAX_HELD_BYTES
from bench.validate import AnthropicStream, read_anthropic_stream
from tests.translators.stream_checks import delta_usage, validate
from tests.translators.test_openai_chat_stream import (
    MESSAGE_ID,
    MODEL,
    bare_tool_delta,
    chunk,
    random_pieces,
    run,
    run_resplit,
    sse,
    tool_delta,
    usage_chunk,
)


def calls_of(stream: AnthropicStream) -> list[tuple[str, str, Any]]:
    """(id, name, input) of every tool_use block, in block order."""
    return [(b["id"], b["name"], b["input"]) for b in stream.blocks if b["type"] == "tool_use"]


def per_event(*deltas: dict) -> list[list[tuple[str, dict]]]:
    """Feed one chunk (of each delta) at a time, then [DONE]: the Anthropic events each gave."""
    translator = ChatStreamTranslator(MODEL, message_id=MESSAGE_ID)
    outputs = [translator.feed(sse(chunk(delta), done=False)) for delta in deltas]
    outputs.append(translator.feed(b"data: [DONE]\n\n") + translator.finish())
    return [[(e.event or "", json.loads(e.data)) for e in SSEDecoder().feed(out)] for out in outputs]


def json_deltas(events: list[tuple[str, dict]]) -> list[tuple[int, str]]:
    return [
        (data["index"], data["delta"]["partial_json"])
        for _, data in events
        if data["type"] == "content_block_delta" and data["delta"]["type"] == "input_json_delta"
    ]


# ---------------------------------------------------------------- interleaved fragments


def test_two_calls_interleaved_fragment_by_fragment() -> None:
    wire = sse(
        chunk(tool_delta(0, call_id="a", name="f", arguments='{"x"')),
        chunk(tool_delta(1, call_id="b", name="g", arguments='{"y"')),
        chunk(tool_delta(0, arguments=": 1}")),
        chunk(tool_delta(1, arguments=": 2}")),
        chunk({}, "tool_calls"),
        usage_chunk(30, 12),
    )
    stream = run_resplit(wire)
    assert calls_of(stream) == [("a", "f", {"x": 1}), ("b", "g", {"y": 2})]
    assert stream.json_fragments == {0: ['{"x"', ": 1}"], 1: ['{"y": 2}']}  # the first streamed, the second held
    assert stream.stop_reason == "tool_use"
    assert delta_usage(stream)["output_tokens"] == 12


def test_three_calls_announced_first_then_interleaved() -> None:
    """Ids and names of every call first (arguments ""), then their arguments in turns."""
    args = [{"path": "a.py"}, {"command": "ls -la", "timeout": 5}, {"pattern": "x{1,2}", "glob": "*.py"}]
    texts = [json.dumps(a) for a in args]
    pieces = [[t[:4], t[4:9], t[9:]] for t in texts]
    chunks = [chunk(tool_delta(i, call_id=f"call_{i}", name=f"tool_{i}", arguments="")) for i in range(3)]
    chunks += [chunk(tool_delta(i, arguments=pieces[i][turn])) for turn in range(3) for i in range(3)]
    stream = run_resplit(sse(*chunks, chunk({}, "tool_calls")))
    assert calls_of(stream) == [(f"call_{i}", f"tool_{i}", args[i]) for i in range(3)]
    assert [len(stream.json_fragments[i]) for i in range(3)] == [3, 1, 1]


def test_the_open_call_streams_as_it_comes_and_the_others_wait() -> None:
    events = per_event(
        tool_delta(0, call_id="a", name="f", arguments=""),
        tool_delta(1, call_id="b", name="g", arguments=""),
        tool_delta(0, arguments='{"x": '),
        tool_delta(1, arguments='{"y": '),
        tool_delta(0, arguments="1}"),
        tool_delta(1, arguments="2}"),
    )
    assert json_deltas(events[2]) == [(0, '{"x": ')]  # out at once
    assert json_deltas(events[4]) == [(0, "1}")]
    assert events[1] == events[3] == events[5] == []  # held
    names = [name for name, _ in events[6]]
    assert names == [
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[6][1][1]["content_block"] == {"type": "tool_use", "id": "b", "name": "g", "input": {}}
    assert json_deltas(events[6]) == [(1, '{"y": 2}')]


def test_held_calls_follow_in_index_order() -> None:
    wire = sse(
        chunk(tool_delta(0, call_id="a", name="f", arguments='{"n": ')),
        chunk(tool_delta(2, call_id="c", name="h", arguments='{"n": ')),
        chunk(tool_delta(1, call_id="b", name="g", arguments='{"n": ')),
        *[chunk(tool_delta(i, arguments=f"{i}}}")) for i in (2, 0, 1)],
        chunk({}, "tool_calls"),
    )
    stream = run_resplit(wire)
    assert calls_of(stream) == [("a", "f", {"n": 0}), ("b", "g", {"n": 1}), ("c", "h", {"n": 2})]


def test_calls_interleaved_by_id_without_index() -> None:
    """No ``index`` (Gemini's OpenAI-compatible API, mistral.rs): the id says whose fragment it is."""
    wire = sse(
        chunk(bare_tool_delta(call_id="call_a", name="f", arguments='{"x": ')),
        chunk(bare_tool_delta(call_id="call_b", name="g", arguments='{"y": ')),
        chunk(bare_tool_delta(call_id="call_a", arguments='"one"}')),
        chunk(bare_tool_delta(call_id="call_b", arguments='"two"}')),
        chunk({}, "tool_calls"),
    )
    stream = run_resplit(wire)
    assert calls_of(stream) == [("call_a", "f", {"x": "one"}), ("call_b", "g", {"y": "two"})]


def test_calls_sharing_an_index_interleaved_by_id() -> None:
    """Every call at index 0 (some Ollama and Dynamo builds), each fragment with its call's id."""
    wire = sse(
        chunk(tool_delta(0, call_id="call_a", name="f", arguments='{"x": ')),
        chunk(tool_delta(0, call_id="call_b", name="g", arguments='{"y": ')),
        chunk(tool_delta(0, call_id="call_a", arguments="1}")),
        chunk(tool_delta(0, call_id="call_b", arguments="2}")),
        chunk({}, "tool_calls"),
    )
    assert calls_of(run_resplit(wire)) == [("call_a", "f", {"x": 1}), ("call_b", "g", {"y": 2})]


def test_a_call_that_looked_finished_but_goes_on() -> None:
    """The open call's arguments so far end with ``}`` when the second call comes: the second
    waits; more of the first means interleaving, and nothing was closed too early."""
    wire = sse(
        chunk(tool_delta(0, call_id="a", name="TodoWrite", arguments='{"todos": [{"id": 1}')),
        chunk(tool_delta(1, call_id="b", name="Read", arguments="")),
        chunk(tool_delta(0, arguments=', {"id": 2}]}')),
        chunk(tool_delta(1, arguments='{"path": "x"}')),
        chunk({}, "tool_calls"),
    )
    stream = run_resplit(wire)
    assert calls_of(stream) == [("a", "TodoWrite", {"todos": [{"id": 1}, {"id": 2}]}), ("b", "Read", {"path": "x"})]


def test_sequential_calls_still_stream_the_next_call_as_it_comes() -> None:
    """OpenAI and vLLM: one call after the other. The next call's first fragment waits for its
    second (which shows the first call was done), then everything streams."""
    events = per_event(
        tool_delta(0, call_id="a", name="f", arguments=""),
        tool_delta(0, arguments='{"x": 1}'),
        tool_delta(1, call_id="b", name="g", arguments=""),
        tool_delta(1, arguments='{"y": '),
        tool_delta(1, arguments="2}"),
    )
    assert events[2] == []
    assert [name for name, _ in events[3]] == ["content_block_stop", "content_block_start", "content_block_delta"]
    assert json_deltas(events[3]) == [(1, '{"y": ')]
    assert json_deltas(events[4]) == [(1, "2}")]


def test_held_calls_are_written_at_done_or_at_the_end_of_the_body() -> None:
    calls = [
        chunk(tool_delta(0, call_id="a", name="f", arguments='{"x": ')),
        chunk(tool_delta(1, call_id="b", name="g", arguments='{"y": 2}')),
        chunk(tool_delta(0, arguments="1}")),
    ]
    for wire in (sse(*calls), sse(*calls, done=False), sse(*calls, usage_chunk(9, 4))):
        stream = run_resplit(wire)
        assert calls_of(stream) == [("a", "f", {"x": 1}), ("b", "g", {"y": 2})]
        assert stream.stop_reason == "tool_use"


def test_a_stream_cut_while_calls_are_held_still_closes_every_block() -> None:
    wire = sse(
        chunk(tool_delta(0, call_id="a", name="f", arguments='{"x": 1')),
        chunk(tool_delta(1, call_id="b", name="g", arguments='{"y": ')),
        done=False,
    )
    stream = read_anthropic_stream(run([wire]))
    assert [(b["id"], b["input"]) for b in stream.blocks] == [("a", None), ("b", None)]
    assert stream.problems == [  # the provider's unfinished JSON; the stream itself is well formed
        """block 0: its input_json_delta pieces are not JSON: '{"x": 1'""",
        """block 1: its input_json_delta pieces are not JSON: '{"y": '""",
    ]
    assert stream.stop_reason == "tool_use"


def test_arguments_for_a_call_whose_block_closed_are_an_error() -> None:
    """What reassembly cannot undo: the first call looked finished, and the second went on
    (so the first was closed) before more of the first came."""
    wire = sse(
        chunk(tool_delta(0, call_id="a", name="f", arguments='{"x": {"y": 1}')),
        chunk(tool_delta(1, call_id="b", name="g", arguments="")),
        chunk(tool_delta(1, arguments='{"z": 2}')),
        chunk(tool_delta(0, arguments="}")),
        chunk({}, "tool_calls"),
    )
    stream = run_resplit(wire)
    assert stream.names[-1] == "error"
    assert stream.error == {
        "type": "api_error",
        "message": "upstream provider sent arguments for tool call a after its block closed",
    }


# ---------------------------------------------------------------- text while a call is open


def test_text_while_a_call_is_unfinished_follows_the_tool_use_blocks() -> None:
    wire = sse(
        chunk(tool_delta(0, call_id="a", name="f", arguments='{"x"')),
        chunk({"content": "interjection"}),
        chunk(tool_delta(0, arguments=": 1}")),
        chunk({}, "tool_calls"),
    )
    stream = run_resplit(wire)
    assert [b["type"] for b in stream.blocks] == ["tool_use", "text"]
    assert stream.blocks[0]["input"] == {"x": 1} and stream.text == "interjection"
    assert stream.stop_reason == "tool_use"


def test_text_after_a_finished_call_is_written_where_it_came() -> None:
    """vLLM's hermes parser sends content between calls: nothing is held, the order is kept."""
    wire = sse(
        chunk(tool_delta(0, call_id="a", name="f", arguments='{"x": 1}')),
        chunk({"content": "\n"}),
        chunk(tool_delta(1, call_id="b", name="g", arguments='{"y": 2}')),
        chunk({}, "tool_calls"),
    )
    stream = run_resplit(wire)
    assert [b["type"] for b in stream.blocks] == ["tool_use", "text", "tool_use"]


def test_text_and_reasoning_during_interleaving_are_held_in_order() -> None:
    wire = sse(
        chunk(tool_delta(0, call_id="a", name="f", arguments='{"x": ')),
        chunk({"content": "one "}),
        chunk(tool_delta(1, call_id="b", name="g", arguments='{"y": ')),
        chunk({"reasoning_content": "hmm"}),
        chunk({"content": "two"}),
        chunk(tool_delta(0, arguments="1}")),
        chunk({"content": " three"}),
        chunk(tool_delta(1, arguments="2}")),
        chunk({}, "tool_calls"),
    )
    stream = run_resplit(wire)
    assert [(b["type"], b.get("text") or b.get("thinking") or b.get("input")) for b in stream.blocks] == [
        ("tool_use", {"x": 1}),
        ("tool_use", {"y": 2}),
        ("text", "one "),
        ("thinking", "hmm"),
        ("text", "two three"),
    ]


def test_a_fragment_without_index_or_id_after_text_continues_its_call() -> None:
    wire = sse(
        chunk(bare_tool_delta(call_id="call_a", name="f", arguments='{"x"')),
        chunk({"content": "interjection"}),
        chunk(bare_tool_delta(arguments=": 1}")),
    )
    stream = run_resplit(wire)
    assert calls_of(stream) == [("call_a", "f", {"x": 1})]
    assert stream.text == "interjection"


# ---------------------------------------------------------------- the bound on what is held


def held_bytes_wire(total: int, piece: int = 64 * 1024) -> bytes:
    """Call 0 unfinished, then call 1's arguments: one string of ``total`` characters."""
    count, rest = divmod(total, piece)
    chunks = [
        chunk(tool_delta(0, call_id="a", name="f", arguments='{"x": ')),
        chunk(tool_delta(1, call_id="b", name="Write", arguments='{"content": "')),
        *[chunk(tool_delta(1, arguments="x" * piece)) for _ in range(count)],
        chunk(tool_delta(1, arguments="x" * rest + '"}')),
        chunk(tool_delta(0, arguments="1}")),
        chunk({}, "tool_calls"),
    ]
    return sse(*chunks)


def test_held_content_up_to_the_bound_is_written() -> None:
    total = MAX_HELD_BYTES - 4096
    stream = validate(run([held_bytes_wire(total)]))
    assert calls_of(stream) == [("a", "f", {"x": 1}), ("b", "Write", {"content": "x" * total})]


def test_held_content_past_the_bound_ends_the_stream_with_an_error() -> None:
    stream = validate(run([held_bytes_wire(MAX_HELD_BYTES)]))
    assert stream.names[-1] == "error"
    assert stream.error["type"] == "api_error"
    assert f"bound on held stream content ({MAX_HELD_BYTES} bytes held" in stream.error["message"]
    assert [b["id"] for b in stream.blocks] == ["a"]  # what came before the error was well formed


def test_many_small_held_calls_count_against_the_bound() -> None:
    """Each held call costs more than its bytes: 10,000 empty calls are past the bound too."""
    calls = [{"index": i, "id": f"c{i}", "type": "function", "function": {"name": "f"}} for i in range(1, 10_001)]
    wire = sse(chunk(tool_delta(0, call_id="c0", name="f", arguments='{"x": ')), chunk({"tool_calls": calls}))
    stream = validate(run([wire]))
    assert stream.names[-1] == "error" and "bound on held stream content" in stream.error["message"]


def test_held_text_counts_against_the_bound() -> None:
    text = "y" * (64 * 1024)
    wire = sse(
        chunk(tool_delta(0, call_id="a", name="f", arguments='{"x": ')),
        *[chunk({"content": text}) for _ in range(MAX_HELD_BYTES // len(text) + 1)],
    )
    stream = validate(run([wire]))
    assert stream.names[-1] == "error" and "bound on held stream content" in stream.error["message"]


# ---------------------------------------------------------------- any interleaving


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(string.printable + "é€😀{}", max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("abc", max_size=3), inner, max_size=3),
    max_leaves=8,
)
ARGUMENTS = st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=6), JSON_VALUES, max_size=4)


def cut(text: str, rng: random.Random) -> list[str]:
    """``text`` in 1 to 6 pieces; none but the last ends with ``}`` (what would look whole)."""
    positions = [i for i in range(1, len(text)) if not text[:i].rstrip().endswith("}")]
    cuts = sorted(rng.sample(positions, k=min(len(positions), rng.randint(0, 5))))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


@settings(
    max_examples=150, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(calls=st.lists(ARGUMENTS, min_size=2, max_size=4), seed=st.integers(0, 2**32 - 1), announce=st.booleans())
def test_any_interleaving_gives_every_call_whole(calls: list[dict], seed: int, announce: bool) -> None:
    """Any order of the calls' fragments (each call's own in order; its id and name on its
    first, with arguments "" when ``announce``), cut anywhere but where the arguments so far
    would look whole, gives every call whole, the first to arrive first, whatever the
    network chunking."""
    rng = random.Random(seed)
    queues: list[list[dict]] = []
    for index, arguments in enumerate(calls):
        pieces = cut(json.dumps(arguments, ensure_ascii=rng.random() < 0.5), rng)
        first = "" if announce else pieces.pop(0)
        fragments = [tool_delta(index, call_id=f"call_{index}", name=f"tool_{index}", arguments=first)]
        queues.append(fragments + [tool_delta(index, arguments=piece) for piece in pieces])
    order = [index for index, queue in enumerate(queues) for _ in queue]
    rng.shuffle(order)  # each call's own fragments stay in order: they are taken from its queue
    wire = sse(*[chunk(queues[index].pop(0)) for index in order], chunk({}, "tool_calls"))
    whole = run([wire])
    assert run(random_pieces(wire, rng)) == whole
    stream = validate(whole)
    got = calls_of(stream)
    assert sorted(got) == [(f"call_{i}", f"tool_{i}", arguments) for i, arguments in enumerate(calls)]
    assert got[0][0] == f"call_{order[0]}"  # the first to arrive streamed
    assert stream.stop_reason == "tool_use"
