"""aimw.telemetry.answer: the message id and stop_reason read from the first and last body
messages of an answer, on the captured stream and JSON answer (tests/fakes)."""

from __future__ import annotations

import json

from aimw.telemetry.answer import answer_facts
from tests.fakes.anthropic_server import capture_bytes, good_message_bytes, split_events

CAPTURE = capture_bytes()


def test_a_stream_s_id_from_message_start_and_stop_reason_from_message_delta():
    events = split_events(CAPTURE)
    message_id = json.loads(events[0].split(b"data: ", 1)[1])["message"]["id"]
    assert answer_facts(events[0], events[-2] + events[-1], streamed=True, whole=False) == (message_id, "end_turn")


def test_a_stream_cut_before_message_delta_has_no_stop_reason():
    events = split_events(CAPTURE)
    head = events[0]
    assert answer_facts(head, events[2] + events[3], streamed=True, whole=False)[1] is None


def test_message_delta_split_across_the_last_two_messages():
    tail = b"".join(split_events(CAPTURE)[-3:])
    cut = tail.index(b'"stop_reason"') + 5
    assert answer_facts(CAPTURE, tail[:cut] + tail[cut:], streamed=True, whole=False)[1] == "end_turn"


def test_a_json_answer_sent_whole():
    captured = good_message_bytes()  # Kong's capture has no id
    assert answer_facts(captured, captured, streamed=False, whole=True) == (None, "end_turn")
    tool_use = {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {}}
    answer = json.dumps({"content": [tool_use], "id": "msg_01", "stop_reason": "tool_use"}).encode()
    assert answer_facts(answer, answer, streamed=False, whole=True) == ("msg_01", "tool_use")  # not the block's id


def test_a_json_answer_in_pieces_or_unreadable_says_nothing():
    answer = good_message_bytes()
    assert answer_facts(answer[:40], answer[40:], streamed=False, whole=False) == (None, None)
    assert answer_facts(b"<html>bad gateway</html>", b"", streamed=False, whole=True) == (None, None)
    assert answer_facts(None, b"", streamed=True, whole=False) == (None, None)


def test_overlong_values_are_not_kept():
    answer = json.dumps({"id": "m" * 500, "stop_reason": "end_turn"}).encode()
    assert answer_facts(answer, answer, streamed=False, whole=True) == (None, "end_turn")
