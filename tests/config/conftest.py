"""Fixtures of the configuration file's tests: real files in tmp_path and a throwaway
service-account key."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

WriteConfig = Callable[..., str]


@pytest.fixture
def write_config(tmp_path) -> WriteConfig:
    """``write_config(text, name="gateway.yaml")``: the path of a file holding ``text``."""

    def write(text: str, name: str = "gateway.yaml") -> str:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


@pytest.fixture(scope="session")
def service_account_json() -> str:
    """A service-account key's JSON text, with a fresh RSA key (never a real account)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "example-project",
            "private_key_id": "0123456789abcdef",
            "private_key": private.decode(),
            "client_email": "aimw-test@example-project.iam.gserviceaccount.com",
            "client_id": "1234567890",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )
