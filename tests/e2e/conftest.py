"""End-to-end fixtures: every recipe's fake provider and gateway (shared by the session;
the Hugging Face ones also by name), a test's case id and SDK client, the real Claude Code
CLI. They are built from :mod:`tests.e2e.harness` and :mod:`tests.e2e.recipes`."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

import anthropic
from tests.e2e.harness import GatewayProcess, checked_fake, sdk_client
from tests.e2e.recipes import RecipeServers
from tests.fakes.openai_chat_server import FakeChatServer
from tests.shared_data import REPO


@pytest.fixture(scope="session")
def recipe_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecipeServers]:
    """Each recipe's fake provider and gateway (a real process), started when a test first
    needs them and kept for the session."""
    with ExitStack() as stack:
        yield RecipeServers(stack, tmp_path_factory)


@pytest.fixture(scope="session")
def fake_router(recipe_servers: RecipeServers) -> FakeChatServer:
    """The fake Hugging Face router."""
    return recipe_servers["huggingface"].fake


@pytest.fixture(scope="session")
def hf_gateway(recipe_servers: RecipeServers) -> GatewayProcess:
    """The Hugging Face recipe, as a real process, calling the fake router."""
    return recipe_servers["huggingface"].gateway


@pytest.fixture
def fake(
    fake_router: FakeChatServer, hf_gateway: GatewayProcess, request: pytest.FixtureRequest
) -> Iterator[FakeChatServer]:
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
    path = os.environ.get("AIMW_CLAUDE_BIN") or str(
        REPO / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude"
    )
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        resolved = shutil.which(path) if os.sep not in path else None
        if resolved:
            return resolved
        reason = f"the Claude Code CLI is not installed at {path} (run `make claude-code` or set AIMW_CLAUDE_BIN)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path
