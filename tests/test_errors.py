"""errors: provider error bodies (Kong's real captures) -> Anthropic errors; redaction."""

from __future__ import annotations

import json

import pytest

from aimw.errors import (
    GatewayError,
    client_status_for,
    error_body,
    error_from_provider,
    error_type_for_status,
    provider_error_message,
    redact,
)
from tests.shared_data import KONG

ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def mapped(status: int, body: bytes) -> tuple[int, dict]:
    client_status, raw = error_from_provider(status, body)
    error = json.loads(raw)
    assert set(error) == {"type", "error"} and error["type"] == "error"
    assert set(error["error"]) == {"type", "message"}
    assert isinstance(error["error"]["message"], str) and error["error"]["message"]
    # the type always agrees with the status the client gets (DESIGN §6)
    assert error["error"]["type"] == error_type_for_status(client_status)
    return client_status, error["error"]


# ---------------------------------------------------------------- Kong's real error bodies


def test_openai_unauthorized() -> None:
    body = (KONG / "openai/llm-v1-chat/responses/unauthorized.json").read_bytes()
    provider_message = json.loads(body)["error"]["message"]
    status, error = mapped(401, body)
    assert status == 401
    assert error["type"] == "authentication_error"
    assert provider_message in error["message"]


def test_huggingface_bad_request_error_string() -> None:
    body = (KONG / "huggingface/llm-v1-chat/responses/bad_request.json").read_bytes()
    status, error = mapped(400, body)
    assert status == 400
    assert error["type"] == "invalid_request_error"
    assert error["message"] == "Template error: undefined value (in <string>:1)"


def test_huggingface_model_loading_503_is_overloaded() -> None:
    body = (KONG / "huggingface/llm-v1-chat/responses/bad_response_model_load.json").read_bytes()
    status, error = mapped(503, body)
    assert status == 529
    assert error["type"] == "overloaded_error"
    assert "Mistral-7B-Instruct-v0.2 is currently loading" in error["message"]


def test_huggingface_timeout() -> None:
    body = (KONG / "huggingface/llm-v1-chat/responses/bad_response_timeout.json").read_bytes()
    status, error = mapped(504, body)
    assert status == 504
    assert error["type"] == "timeout_error"
    assert "time out" in error["message"]


def test_huggingface_unauthorized() -> None:
    body = (KONG / "huggingface/llm-v1-chat/responses/unauthorized.json").read_bytes()
    status, error = mapped(401, body)
    assert status == 401 and error["type"] == "authentication_error"


def test_openai_bad_request() -> None:
    body = (KONG / "openai/llm-v1-chat/responses/bad_request.json").read_bytes()
    status, error = mapped(400, body)
    assert status == 400 and error["type"] == "invalid_request_error"
    assert json.loads(body)["error"]["message"][:40] in error["message"]


def test_openai_html_500_is_summarised_without_html() -> None:
    body = (KONG / "openai/llm-v1-chat/responses/internal_server_error.html").read_bytes()
    assert body.lstrip().startswith(b"<!DOCTYPE html>")
    status, error = mapped(500, body)
    assert status == 500
    assert error["type"] == "api_error"
    assert "500" in error["message"]
    for html in ("<", ">", "html", "Fake Internal Server Error", "Mock AI server"):
        assert html not in error["message"]


# ---------------------------------------------------------------- other shapes


def test_anthropic_shape_passes_through() -> None:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    status, error = mapped(529, body)
    assert status == 529 and error == {"type": "overloaded_error", "message": "Overloaded"}


def test_google_shape_keeps_status_name() -> None:
    body = json.dumps(
        {"error": {"code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}}
    ).encode()
    status, error = mapped(400, body)
    assert status == 400
    assert "Invalid JSON payload received." in error["message"]
    assert "400" in error["message"] or "INVALID_ARGUMENT" in error["message"]


def test_top_level_message_shape() -> None:
    status, error = mapped(404, b'{"message": "model not found", "type": "not_found"}')
    assert status == 404 and error["type"] == "not_found_error" and "model not found" in error["message"]


@pytest.mark.parametrize("body", [b"", b"Bad Gateway", b"[]", b'{"detail": "x"}', b'{"error": null}'])
def test_bodies_without_a_message_name_the_status(body: bytes) -> None:
    status, error = mapped(502, body)
    assert status == 502 and error["type"] == "api_error"
    assert "502" in error["message"]


@pytest.mark.parametrize(
    ("status", "client_status"), [(400, 400), (401, 401), (429, 429), (500, 500), (502, 502), (503, 529), (504, 504)]
)
def test_client_status(status: int, client_status: int) -> None:
    assert client_status_for(status) == client_status
    assert mapped(status, b'{"error": "x"}')[0] == client_status


def test_provider_secrets_never_reach_the_client() -> None:
    secret = "hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345"
    body = json.dumps({"error": {"message": f"Invalid credentials in header: Bearer {secret}", "code": 401}}).encode()
    _, raw = error_from_provider(401, body)
    assert secret.encode() not in raw
    assert b"Invalid credentials" in raw


def test_huge_provider_message_is_bounded() -> None:
    body = json.dumps({"error": {"message": "x" * 100_000}}).encode()
    _, error = mapped(400, body)
    assert 100 < len(error["message"]) < 10_000
    assert len(provider_error_message(400, body)) < 10_000


# ---------------------------------------------------------------- redact, types, GatewayError


@pytest.mark.parametrize(
    "secret",
    [
        "hf_aBcDeFgHiJkLmNoPqRsTuVwXyZ012345",
        "sk-proj-AbCdEf0123456789_-xyz",
        "sk-ant-api03-AbCdEf0123456789",
        "sk_live_51HxYzAbCdEf",
        "AIzaSyA-1234567890abcdefghijklmnopq",
        "ya29.a0AfB_byC-1234567890",
    ],
)
def test_redact_keys(secret: str) -> None:
    text = f"key={secret} was rejected"
    out = redact(text)
    assert secret not in out
    assert out.startswith("key=") and out.endswith(" was rejected")


@pytest.mark.parametrize(
    "header", ["Bearer abc.DEF-123_xyz", "bearer abc.DEF-123_xyz", "Authorization: BEARER abc.DEF-123_xyz"]
)
def test_redact_bearer_tokens(header: str) -> None:
    out = redact(f"sent {header}, got 401")
    assert "abc.DEF-123_xyz" not in out
    assert out.lower().startswith("sent ") and out.endswith(", got 401")
    assert "bearer" in out.lower()  # the scheme stays, the credential goes


def test_redact_leaves_ordinary_text_alone() -> None:
    text = 'The task-runner asked for disk-usage; "sk-" alone, hf_ alone and AIza are not keys. Bearer'
    assert redact(text) == text


def test_error_body_redacts() -> None:
    body = json.loads(error_body("api_error", "upstream said: Bearer sekrit-token-123"))
    assert body == {"type": "error", "error": {"type": "api_error", "message": body["error"]["message"]}}
    assert "sekrit-token-123" not in body["error"]["message"]


@pytest.mark.parametrize(("status", "error_type"), sorted(ANTHROPIC_TYPES.items()))
def test_error_type_for_known_statuses(status: int, error_type: str) -> None:
    assert error_type_for_status(status) == error_type


@pytest.mark.parametrize("status", [405, 408, 409, 418, 422, 451, 499])
def test_unknown_4xx_is_invalid_request(status: int) -> None:
    assert error_type_for_status(status) == "invalid_request_error"


@pytest.mark.parametrize("status", [501, 502, 503, 507, 520, 599])
def test_unknown_5xx_is_api_error(status: int) -> None:
    assert error_type_for_status(status) == "api_error"


def test_gateway_error() -> None:
    error = GatewayError(413, "too big")
    assert (error.status, error.error_type, error.message, str(error)) == (
        413,
        "request_too_large",
        "too big",
        "too big",
    )
    error = GatewayError(502, "bad upstream", "api_error")
    assert (error.status, error.error_type) == (502, "api_error")
    assert GatewayError(422, "x").error_type == "invalid_request_error"


# ---------------------------------------------------------------- Azure OpenAI's content filter

# Azure OpenAI docs, "Content filtering": a prompt that trips the filter gets HTTP 400 with
# error.code "content_filter" and, per category, {"filtered", "severity"} (or "detected").
AZURE_FILTER_MESSAGE = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry."
)


def azure_filter_body(results: dict | None, inner_code: str = "ResponsibleAIPolicyViolation") -> bytes:
    inner: dict = {"code": inner_code}
    if results is not None:
        inner["content_filter_result"] = results
    return json.dumps(
        {
            "error": {
                "message": AZURE_FILTER_MESSAGE,
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": inner,
            }
        }
    ).encode()


def test_azure_content_filter_names_the_filtered_categories() -> None:
    body = azure_filter_body(
        {
            "hate": {"filtered": False, "severity": "safe"},
            "jailbreak": {"filtered": False, "detected": False},
            "self_harm": {"filtered": True, "severity": "high"},
            "sexual": {"filtered": False, "severity": "low"},
            "violence": {"filtered": True, "severity": "medium"},
            "custom_blocklists": {"filtered": False, "details": []},
        }
    )
    status, error = mapped(400, body)
    assert status == 400 and error["type"] == "invalid_request_error"
    message = error["message"]
    assert message.startswith("content_filter: ")
    assert AZURE_FILTER_MESSAGE in message
    assert message.endswith("(filtered: self_harm, violence)")
    for quiet in ("hate", "jailbreak", "sexual", "custom_blocklists"):
        assert quiet not in message
    assert provider_error_message(400, body) == message


def test_azure_jailbreak_detection_is_named() -> None:
    body = azure_filter_body(
        {"jailbreak": {"filtered": True, "detected": True}, "hate": {"filtered": False, "severity": "safe"}}
    )
    assert provider_error_message(400, body).endswith("(filtered: jailbreak)")


@pytest.mark.parametrize(
    "results",
    [
        None,
        {},
        {"hate": {"filtered": False, "severity": "safe"}, "violence": {"filtered": False, "severity": "safe"}},
        {"violence": {"filtered": "true"}, "hate": {"severity": "high"}, "odd": [1, 2], "flag": True},
    ],
)
def test_azure_error_without_a_filtered_category_has_no_suffix(results) -> None:
    message = provider_error_message(400, azure_filter_body(results))
    assert message == f"content_filter: {AZURE_FILTER_MESSAGE}"
    assert "filtered:" not in message


def test_numeric_status_in_an_error_object_is_read() -> None:
    body = json.dumps({"error": {"message": "Resource not found", "status": 404}}).encode()
    status, error = mapped(404, body)
    assert status == 404 and error["type"] == "not_found_error"
    assert error["message"] == "404: Resource not found"


def test_azure_filter_message_is_bounded_and_redacted() -> None:
    results = {f"category_{i}": {"filtered": True} for i in range(2000)}
    body = azure_filter_body(results)
    assert len(provider_error_message(400, body)) < 10_000
    leaky = json.dumps(
        {
            "error": {
                "message": "bad key Bearer sekrit-azure-token-9",
                "code": "content_filter",
                "innererror": {"content_filter_result": {"violence": {"filtered": True}}},
            }
        }
    ).encode()
    _, raw = error_from_provider(400, leaky)
    assert b"sekrit-azure-token-9" not in raw
    assert b"(filtered: violence)" in raw
