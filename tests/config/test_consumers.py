"""Consumers and their keys (issue 12, Kong's names): the AIMW_CONSUMERS file and the config
file's top-level ``consumers``; keys plain, ``sha256:<hex>`` or from the environment in the
three spellings; stable ids; and every refusal named by its path, never showing a key."""

from __future__ import annotations

import hashlib
import textwrap
import uuid

import pytest

from aimw.config import Consumer, KeyauthCredential, keyring, load_config, load_consumers
from aimw.settings import ConfigurationError
from tests.config.support import problem

ALICE_KEY = "team-alice-" + "5e0c9d1f7a3b2c48"
BOB_KEY = "team-bob-" + "81f6a2c4e9d03b75"
CAROL_KEY = "team-carol-" + "c3a9e71b05f2d684"
BOB_HASH = "sha256:" + hashlib.sha256(BOB_KEY.encode()).hexdigest()
ENVIRON = {"ALICE_KEY": ALICE_KEY, "DECK_CAROL_KEY": CAROL_KEY, "DAVE_KEY": "team-dave-" + "0f1e2d3c4b5a6978"}
BOB_ID = "8f0c6b9e-3f7a-4f55-9a51-0b1f3c2d4e5f"

FILE = f"""\
consumers:
  - username: alice
    keyauth_credentials: [{{key: "${{ALICE_KEY}}"}}]
  - username: bob
    id: {BOB_ID}
    custom_id: team-b
    tags: [backend]
    keyauth_credentials:
      - key: {BOB_HASH.upper().replace("SHA256:", "sha256:")}
        id: 0b9d1a52-6c3e-4d7f-8a21-5e4f3c2b1a09
        tags: [laptop]
  - username: carol
    keyauth_credentials:
      - key: '${{{{ env "DECK_CAROL_KEY" }}}}'
      - key: "{{vault://env/dave-key}}"
"""


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def consumers_problem(write_config, text: str, environ: dict[str, str] | None = None) -> str:
    """The ConfigurationError's message of a consumers file, after ``aimw: <file>: ``."""
    path = write_config(textwrap.dedent(text), "consumers.yaml")
    with pytest.raises(ConfigurationError) as caught:
        load_consumers(path, environ or {})
    message = str(caught.value)
    assert message.startswith(f"aimw: {path}: "), message
    return message.removeprefix(f"aimw: {path}: ")


def test_the_consumers_file_with_every_kind_of_key(write_config):
    consumers = load_consumers(write_config(FILE, "consumers.yaml"), ENVIRON)

    keys = keyring(consumers)
    assert set(keys) == {digest(ALICE_KEY), digest(BOB_KEY), digest(CAROL_KEY), digest(ENVIRON["DAVE_KEY"])}
    alice, bob = keys[digest(ALICE_KEY)], keys[digest(BOB_KEY)]
    assert alice.username == "alice" and alice.custom_id is None
    assert alice.id == str(uuid.uuid5(uuid.NAMESPACE_URL, "aimw:consumer:alice"))  # derived from the username
    assert (bob.id, bob.custom_id, bob.credential_id) == (BOB_ID, "team-b", "0b9d1a52-6c3e-4d7f-8a21-5e4f3c2b1a09")
    carol, dave = keys[digest(CAROL_KEY)], keys[digest(ENVIRON["DAVE_KEY"])]
    assert carol.username == dave.username == "carol" and carol.id == dave.id
    assert carol.credential_id != dave.credential_id


def test_ids_are_stable_and_never_derived_from_a_key(write_config):
    """The same file gives the same ids (every worker, every machine); another key in the
    same place keeps its credential id, so the log's ids cannot test guesses of a key."""
    first = keyring(load_consumers(write_config(FILE, "consumers.yaml"), ENVIRON))
    again = keyring(load_consumers(write_config(FILE, "consumers.yaml"), ENVIRON))
    assert first == again
    rekeyed = keyring(load_consumers(write_config(FILE, "consumers.yaml"), {**ENVIRON, "ALICE_KEY": "another-key-1"}))
    assert rekeyed[digest("another-key-1")] == first[digest(ALICE_KEY)]


def test_the_config_files_top_level_consumers(write_config):
    path = write_config("llm_format: anthropic\ntargets: [{model: {provider: openai}}]\n" + FILE)
    config = load_config(path, ENVIRON)
    assert [consumer.username for consumer in config.consumers] == ["alice", "bob", "carol"]
    assert digest(BOB_KEY) in keyring(config.consumers)
    assert (
        load_config(write_config("llm_format: anthropic\ntargets: [{model: {provider: openai}}]\n"), {}).consumers
        is None
    )


def test_a_key_is_never_shown(write_config):
    credential = KeyauthCredential(key=ALICE_KEY)
    assert ALICE_KEY not in repr(credential) and ALICE_KEY not in repr(
        Consumer(username="a", keyauth_credentials=(credential,))
    )


TWO = """\
consumers:
  - username: alice
    keyauth_credentials: [{{key: {first}}}]
  - username: {second_name}
    keyauth_credentials: [{{key: {second}}}]
"""

CASES = [
    (
        TWO.format(first=ALICE_KEY, second_name="bob", second=ALICE_KEY),
        "consumers[1].keyauth_credentials[0].key: the same key as consumers[0].keyauth_credentials[0] "
        "(alice and bob): each key must name one consumer",
    ),
    (  # the same key, once plain and once hashed
        TWO.format(first=BOB_HASH, second_name="bob", second=BOB_KEY),
        "consumers[1].keyauth_credentials[0].key: the same key as consumers[0].keyauth_credentials[0] (alice and bob)",
    ),
    (
        TWO.format(first=ALICE_KEY, second_name="alice", second=BOB_KEY),
        "consumers[1].username: username 'alice' is also consumers[0]'s; expected each once",
    ),
    (
        "consumers:\n  - {username: a, keyauth_credentials: [{key: k1, id: 0b9d1a52-6c3e-4d7f-8a21-5e4f3c2b1a09}]}\n"
        "  - {username: b, keyauth_credentials: [{key: k2, id: 0b9d1a52-6c3e-4d7f-8a21-5e4f3c2b1a09}]}\n",
        "consumers[1].keyauth_credentials[0].id: credential id 0b9d1a52-6c3e-4d7f-8a21-5e4f3c2b1a09 is also "
        "consumers[0].keyauth_credentials[0]'s",
    ),
    ("consumers: []\n", "consumers: expected at least one consumer"),
    ("consumers: [{username: alice}]\n", "consumers: no consumer has keyauth_credentials: nobody could call"),
    ("consumers: [{username: alice, keyauth_credentials: [{key: ''}]}]\n", "consumers[0].keyauth_credentials[0].key:"),
    (
        f"consumers: [{{username: alice, keyauth_credentials: [{{key: '{ALICE_KEY} x'}}]}}]\n",
        "consumers[0].keyauth_credentials[0].key: holds a space or a character a header cannot carry; expected the "
        "key (visible ASCII, no spaces) or sha256:<64 hexadecimal digits>",
    ),
    (
        f"consumers: [{{username: alice, keyauth_credentials: [{{key: '{BOB_HASH[:-1]}'}}]}}]\n",
        "consumers[0].keyauth_credentials[0].key: a sha256: key must be followed by 64 hexadecimal digits",
    ),
    (
        f"consumers: [{{username: alice, keyauth_credentials: [{{key: {ALICE_KEY}, ttl: 3600}}]}}]\n",
        "consumers[0].keyauth_credentials[0].ttl: not supported by aimw (keys do not expire",
    ),
    (f"consumers: [{{keyauth_credentials: [{{key: {ALICE_KEY}}}]}}]\n", "consumers[0].username: required"),
    (
        f"consumers: [{{username: a, keyauth_credential: [{{key: {ALICE_KEY}}}]}}]\n",
        "consumers[0].keyauth_credential: unknown field",
    ),
    (f"consumers: [{{username: a, id: 42, keyauth_credentials: [{{key: {ALICE_KEY}}}]}}]\n", "consumers[0].id:"),
    (
        "consumers: [{username: alice, keyauth_credentials: [{key: '${ALICE_KEY}'}]}]\n",
        "consumers[0].keyauth_credentials[0].key: the environment variable ALICE_KEY is not set (or is empty)",
    ),
    (f"users: [{{username: a, keyauth_credentials: [{{key: {ALICE_KEY}}}]}}]\n", "users: unknown field"),
    (f"- {{username: a, keyauth_credentials: [{{key: {ALICE_KEY}}}]}}\n", "expected a mapping with consumers:"),
    (f"consumers: [{{username: a, keyauth_credentials: [{{key: {ALICE_KEY}]}}\n", "not valid YAML (line 1, column"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_a_consumers_file_problem_is_named_by_its_path_never_showing_a_key(write_config, text, expected):
    message = consumers_problem(write_config, text)
    assert message.startswith(expected), message
    for key in (ALICE_KEY, BOB_KEY, BOB_HASH[7:], BOB_HASH[7:-1]):
        assert key not in message


@pytest.mark.parametrize(("text", "expected"), CASES[:4])
def test_the_config_file_refuses_the_same(write_config, text, expected):
    message = problem(write_config, "llm_format: anthropic\ntargets: [{model: {provider: openai}}]\n" + text)
    assert message.startswith(expected), message
    assert ALICE_KEY not in message and BOB_KEY not in message


def test_an_unreadable_consumers_file(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read the consumers file"):
        load_consumers(str(tmp_path / "missing.yaml"), {})
