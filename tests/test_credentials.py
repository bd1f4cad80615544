"""Provider credentials: what each adds to a request, and that none shows its secret."""

from __future__ import annotations

import pytest

from aimw.credentials import HeaderCredential, QueryCredential, bearer
from aimw.providers.anthropic import ANTHROPIC
from aimw.providers.azure import azure
from aimw.providers.huggingface import HUGGINGFACE

pytestmark = pytest.mark.anyio

SECRET = "sk-" + "secret-value-0042"


async def test_a_header_credential_adds_its_header():
    credential = HeaderCredential("Api-Key", SECRET)
    assert await credential.authorization() == ([(b"api-key", SECRET.encode())], b"")


async def test_bearer():
    assert await bearer(SECRET).authorization() == ([(b"authorization", b"Bearer " + SECRET.encode())], b"")


async def test_a_query_credential_is_percent_encoded():
    headers, query = await QueryCredential("key", "a b&c=d/é").authorization()
    assert headers == []
    assert query == b"key=a%20b%26c%3Dd%2F%C3%A9"


@pytest.mark.parametrize(
    "credential", [HeaderCredential("x-api-key", SECRET), QueryCredential("key", SECRET), bearer(SECRET)]
)
def test_no_repr_shows_the_secret(credential):
    assert SECRET not in repr(credential) and "redacted" in repr(credential)


@pytest.mark.parametrize(
    "provider, header, prefix",
    [
        (HUGGINGFACE, b"authorization", b"Bearer "),
        (ANTHROPIC, b"x-api-key", b""),
        (azure("res", "dep"), b"api-key", b""),
        (azure("res", "dep", auth_header="authorization"), b"authorization", b"Bearer "),
    ],
)
async def test_each_provider_sends_its_kind_of_credential(provider, header, prefix):
    credential = provider.credential_for(SECRET)
    assert credential is not None
    assert await credential.authorization() == ([(header, prefix + SECRET.encode())], b"")
    assert provider.credential_for(None) is None
