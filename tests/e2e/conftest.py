"""End-to-end fixtures: the fake Hugging Face router and the gateway serving the Hugging
Face recipe (shared by the session), a test's case id and SDK client, the real Claude Code
CLI. The harness they are built from is :mod:`tests.e2e.harness`."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import anthropic
import pytest

from tests.e2e.harness import HF_TOKEN, GatewayProcess, checked_fake, running_gateway, sdk_client
from tests.fakes.openai_chat_server import FakeChatServer
from tests.shared_data import REPO


@pytest.fixture(scope="session")
def fake_router() -> Iterator[FakeChatServer]:
    with FakeChatServer(HF_TOKEN) as server:
        yield server


@pytest.fixture(scope="session")
def hf_gateway(fake_router: FakeChatServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The Hugging Face recipe, as a real process, calling the fake router."""
    env = {"HUGGINGFACE_API_TOKEN": HF_TOKEN, "AIMW_UPSTREAM_URL": fake_router.url}
    with running_gateway("recipes.huggingface:app", env, tmp_path_factory, "hf-gateway") as gateway:
        yield gateway


@pytest.fixture
def fake(fake_router: FakeChatServer, hf_gateway: GatewayProcess, request: pytest.FixtureRequest) -> Iterator[FakeChatServer]:
    """The fake router, emptied for this test; afterwards the gateway must still be up, must
    have sent the router nothing it rejects, and the test must have used all its replies."""
    with checked_fake(fake_router, [hf_gateway], request) as server:
        yield server


@pytest.fixture
def case(request: pytest.FixtureRequest) -> str:
    """A unique id for this test's requests (sent as ``x-e2e-case``)."""
    return f"{request.node.name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(gateway: GatewayProcess, case: str) -> anthropic.Anthropic:
    """The Anthropic SDK calling the module's ``gateway`` (see :func:`sdk_client`)."""
    return sdk_client(gateway.url, case)


@pytest.fixture(scope="session")
def claude_bin() -> str:
    """The real Claude Code CLI (``make claude-code``); AIMW_CLAUDE_BIN overrides the path."""
    path = os.environ.get("AIMW_CLAUDE_BIN") or str(REPO / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        resolved = shutil.which(path) if os.sep not in path else None
        if resolved:
            return resolved
        reason = f"the Claude Code CLI is not installed at {path} (run `make claude-code` or set AIMW_CLAUDE_BIN)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path
