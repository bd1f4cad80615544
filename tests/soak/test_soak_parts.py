"""The soak's parts on their own: the plan header the fake follows, the fast path of the stream
check against the shared validator, the log check finding what a gateway could lose, the
fake router's faults as a client sees them, and the upstream pool's connection counts the
settle reads (aimw.upstream.transport.UpstreamTransport.connections)."""

from __future__ import annotations

import json

import httpx
import pytest

from aimw.upstream.transport import PoolConnections, UpstreamTransport
from bench.soak.chat import WORDS
from bench.soak.checks import answer_problems, read_stream
from bench.soak.load import Ended
from bench.soak.logcheck import check_log
from bench.soak.plan import HEADER, Plan, Planner, exchange_id, parse_header
from bench.soak.upstream import start_router
from bench.validate import read_anthropic_stream

TOKEN, MODEL = "hf_parts", "soak/model"


def _event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


def _stream(texts: list[str], output_tokens: int, *, error: bool = False) -> bytes:
    """An Anthropic text stream as aimw writes it (one text block), or one cut by an error."""
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": MODEL, "content": [],
               "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": 0, "output_tokens": 0}}  # fmt: skip
    body = _event("message_start", {"type": "message_start", "message": message})
    block = {"type": "text", "text": ""}
    body += _event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
    for text in texts:
        delta = {"type": "text_delta", "text": text}
        body += _event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
    if error:
        return body + _event("error", {"type": "error", "error": {"type": "api_error", "message": "broke off"}})
    body += _event("content_block_stop", {"type": "content_block_stop", "index": 0})
    usage = {"input_tokens": 10001, "output_tokens": output_tokens}
    delta = {"stop_reason": "end_turn", "stop_sequence": None}
    body += _event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
    return body + _event("message_stop", {"type": "message_stop"})


def _tokens(count: int) -> list[str]:
    return [f"{WORDS[index % len(WORDS)]}~{index}~{1000 + index}~ " for index in range(count)]


def test_a_plan_travels_in_its_header() -> None:
    plan = Planner(3).draw(Planner(3).client_rng(0))
    assert parse_header(plan.header()) == Plan(plan.id, plan.kind, plan.tokens, plan.at, plan.prompt_tokens)
    assert exchange_id(plan.header()) == plan.id
    assert exchange_id(None) is None and exchange_id("x y") is None
    with pytest.raises(ValueError):
        parse_header("1 teleport 3 0 10")


def test_the_same_seed_draws_the_same_exchanges_for_each_client() -> None:
    first, second = Planner(7), Planner(7, first_id=500)
    kinds = [[first.draw(first.client_rng(client)).kind for _ in range(20)] for client in range(3)]
    again = [[second.draw(second.client_rng(client)).kind for _ in range(20)] for client in range(3)]
    assert kinds == again


@pytest.mark.parametrize("count", [0, 1, 7, 300])
def test_the_fast_path_reads_a_text_stream_as_the_shared_validator_does(count: int) -> None:
    body = _stream(_tokens(count), count)
    stream, text = read_stream(body)
    full = read_anthropic_stream(body)
    assert stream.problems == full.problems == []
    assert (text, stream.stop_reason, stream.usage) == (full.text, full.stop_reason, full.usage)
    assert answer_problems(Plan(1, "normal", count, 0, 10001), "complete", 200, body) == ([], False)


def test_the_fast_path_leaves_anything_else_to_the_shared_validator() -> None:
    body = _stream(_tokens(3), 3)
    misplaced = body.replace(b'"index":0,"delta"', b'"index":1,"delta"', 1)
    assert "which is not the open block" in " ".join(read_stream(misplaced)[0].problems)
    broken = _stream(_tokens(2), 0, error=True)
    stream, text = read_stream(broken)
    assert stream.problems == [] and stream.error is not None and text.count("~") == 6
    assert answer_problems(Plan(1, "reset", 9, 2, 10001), "complete", 200, broken) == ([], False)
    assert answer_problems(Plan(1, "normal", 2, 0, 10001), "complete", 200, broken)[0]  # a good stream may not break


def test_the_gateway_s_own_timeout_is_an_answer_counted_apart() -> None:
    timeout = (
        b'{"type":"error","error":{"type":"timeout_error","message":"the upstream provider did not answer in time"}}'
    )
    assert answer_problems(Plan(1, "normal", 9, 0, 10001), "complete", 504, timeout) == ([], True)
    assert answer_problems(Plan(1, "stall_head", 9, 0, 10001), "complete", 504, timeout) == ([], False)
    assert answer_problems(Plan(1, "normal", 9, 0, 10001), "complete", 504, b'{"error": "x"}')[0]
    cut = _stream(_tokens(2), 0, error=True).replace(b"broke off", b"broke off (ReadTimeout)")
    assert answer_problems(Plan(1, "hold", 900, 0, 10001), "complete", 200, cut) == ([], True)


def test_a_changed_lost_or_repeated_token_is_found() -> None:
    tokens = _tokens(4)
    plan = Plan(1, "normal", 4, 0, 10001)
    for texts in (tokens[:1] + tokens[2:] + ["x~9~9~ "], tokens[:2] + tokens[1:3], [*tokens[:3], tokens[3].upper()]):
        assert answer_problems(plan, "complete", 200, _stream(texts, 4))[0], texts


def _line(header: str, status: int, *, error: str | None = None, usage: dict | None = None) -> bytes:
    line: dict = {"request": {"headers": {"x-soak-exchange": header}}, "response": {"status": status}}
    meta = {"error": error} if error else {}
    line["ai"] = {"proxy": {"meta": meta, "usage": usage or {}}}
    return json.dumps(line).encode() + b"\n"


def test_the_log_check_finds_lost_repeated_torn_and_wrong_lines(tmp_path) -> None:
    normal, departed = Plan(1, "normal", 3, 0, 10001), Plan(2, "depart_stream", 30, 4, 10002)
    limited, stalled = Plan(3, "http_429", 9, 0, 10003), Plan(4, "stall_head", 9, 0, 10004)
    exchanges = {
        plan.id: Ended(plan, tokens, status, False)
        for plan, tokens, status in ((normal, 3, 200), (departed, 4, 0), (limited, 0, 429), (stalled, 0, 504))
    }
    good = (
        _line(normal.header(), 200, usage={"prompt_tokens": 10001, "completion_tokens": 3})
        + _line(departed.header(), 499, error="client closed request mid-stream",
                usage={"completion_tokens": 4, "estimated": True})
        + _line(limited.header(), 429, error="provider answered HTTP 429")
        + _line(stalled.header(), 504, error="the upstream provider did not answer in time")
    )  # fmt: skip
    path = tmp_path / "aimw.log"
    path.write_bytes(good)
    assert check_log(path, exchanges).problem_counts == {}
    path.write_bytes(good.replace(b"499", b"200") + _line(stalled.header(), 504, error="x") + b'{"request": ')
    found = check_log(path, exchanges)
    assert found.problem_counts == {"status": 1, "departures": 1, "lines": 3}
    path.write_bytes(
        good.replace(b'"completion_tokens": 3', b'"completion_tokens": 2').replace(b"client closed", b"it")
    )
    found = check_log(path, exchanges)
    assert found.problem_counts == {"usage": 1, "reason": 1, "departures": 1}


def test_a_client_that_left_after_its_answer_ended_is_checked_as_a_whole_answer(tmp_path) -> None:
    plan = Plan(5, "depart_stream", 20, 4, 10005)
    whole = _line(plan.header(), 200, usage={"prompt_tokens": 10005, "completion_tokens": 20})
    path = tmp_path / "aimw.log"
    path.write_bytes(whole)
    late = {5: Ended(plan, 4, 200, False, left_ns=2_000)}
    found = check_log(path, late, answered_ns={5: 1_000})  # the fake had ended it before the client left
    assert (found.problem_counts, found.late_departures) == ({}, 1)
    found = check_log(path, late, answered_ns={5: 3_000})  # the client left first: the gateway missed it
    assert found.problem_counts == {"status": 1, "reason": 1, "usage": 1, "departures": 1}
    assert check_log(path, late).problem_counts["status"] == 1  # the fake never ended it


@pytest.mark.anyio
async def test_the_fake_router_checks_the_request_and_injects_each_fault() -> None:
    server, router = await start_router(TOKEN, MODEL, max_stall=1.0)
    port = server.sockets[0].getsockname()[1]
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    async with server, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as client:

        async def ask(plan: Plan, **extra) -> httpx.Response:
            sent = {**headers, HEADER: plan.header(), **extra}
            return await client.post("/v1/chat/completions", json=body, headers=sent)

        answered = await ask(Plan(1, "normal", 3, 0, 10001))
        assert (
            answered.status_code == 200 and answered.text.count("~") == 9 and answered.text.endswith("data: [DONE]\n\n")
        )
        assert '"usage":{"prompt_tokens":10001,"completion_tokens":3' in answered.text
        assert (await ask(Plan(2, "http_503", 3, 0, 10001))).status_code == 503
        assert '"content":"cut off her\n\n' in (await ask(Plan(3, "truncated", 5, 2, 10001))).text
        with pytest.raises(httpx.RemoteProtocolError):
            await ask(Plan(4, "reset", 5, 2, 10001))
        refused = await ask(Plan(5, "normal", 3, 0, 10001), **{"x-api-key": "sk-ant-leak"})
        assert refused.status_code == 400 and router.accounting.rejected == 1
        assert router.accounting.fates == {1: "answered", 2: "error_answered", 3: "truncated", 4: "reset"}


@pytest.mark.anyio
async def test_the_pool_counts_its_idle_and_busy_connections() -> None:
    server, router = await start_router(TOKEN, MODEL, max_stall=1.0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    transport = UpstreamTransport(url)
    assert transport.connections() == PoolConnections(idle=0, in_use=0)
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True,
                       "stream_options": {"include_usage": True}}).encode()  # fmt: skip
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    async with server:
        held = []  # two streams the fake holds until released
        for plan in (Plan(1, "hold", 1000, 0, 10001), Plan(2, "hold", 1000, 0, 10001)):
            request = httpx.Request(
                "POST", url + "/v1/chat/completions", content=body, headers={**headers, HEADER: plan.header()}
            )
            held.append(await transport.get().handle_async_request(request))
        assert transport.connections() == PoolConnections(idle=0, in_use=2)
        router.released = True
        for response in held:
            await response.aread()
            await response.aclose()
        assert transport.connections() == PoolConnections(idle=2, in_use=0)
        await transport.close()
    assert UpstreamTransport("http://x", transport=httpx.AsyncHTTPTransport()).connections() is None
