"""Consumers and their keys, in Kong's names (Kong's Consumer entity and key-auth plugin's
``keyauth_credentials``, as deck writes them)::

    consumers:
      - username: alice
        keyauth_credentials:
          - key: ${ALICE_KEY}                  # the key itself, from the environment
      - username: bob
        id: 8f0c6b9e-3f7a-4f55-9a51-0b1f3c2d4e5f    # optional: Kong's consumer id (a UUID)
        keyauth_credentials:
          - key: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08

A ``key`` is the key a teammate sends (visible ASCII, no spaces), or its SHA-256 written
``sha256:<64 hex digits>`` (``printf %s "$KEY" | sha256sum``), so the file need not hold it.
Plain keys are hashed at load: at run time only digests exist (:func:`keyring`).

Kong's ids are UUIDs; without one in the file a consumer's ``id`` is derived from its
username, and a credential's from its consumer's id and its place in the list (UUID v5:
stable across restarts, workers and machines; give ``id`` to keep it when the list is
reordered). The ids never derive from a key, so the log cannot be used to test guesses.
Problems raise ``ValueError("<field path>: <what is expected>")`` (msgspec reports them at
the Struct's path); a key's value is never in a message.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

import msgspec

HASHED_PREFIX = "sha256:"
_HEX_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_PLAIN_KEY = re.compile(r"[\x21-\x7e]+")  # what a header carries whole: no space, no control character
_KEY_FORMS = "the key (visible ASCII, no spaces) or sha256:<64 hexadecimal digits>"


@dataclass(frozen=True, slots=True)
class AuthenticatedConsumer:
    """Who a request's key named, as Kong logs it: the consumer's ``id`` (UUID text),
    ``username`` and ``custom_id``, and ``credential_id``, the id of the key that matched
    (Kong's ``authenticated_entity.id``). One object per key, built at start and shared by
    every request that presents the key (never a key or its digest)."""

    id: str
    username: str
    custom_id: str | None
    credential_id: str


class KeyauthCredential(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One key (Kong's ``keyauth_credentials[]``): ``key`` (see the module docstring),
    ``id`` (UUID, optional), ``tags`` (accepted, unused). Kong's ``ttl`` is refused once
    set: keys do not expire in aimw. ``repr`` never shows the key."""

    key: Annotated[str, msgspec.Meta(min_length=1)]
    id: uuid.UUID | None = None
    tags: tuple[str, ...] = ()
    ttl: int | None = None

    def __repr__(self) -> str:
        return f"KeyauthCredential(key=<redacted>, id={self.id!r})"

    def __post_init__(self) -> None:
        if self.ttl is not None:
            raise ValueError("ttl: not supported by aimw (keys do not expire; remove the key to revoke it)")
        if self.key.startswith(HASHED_PREFIX):
            if not _HEX_DIGEST.fullmatch(self.key[len(HASHED_PREFIX) :]):
                raise ValueError(f"key: a sha256: key must be followed by 64 hexadecimal digits; expected {_KEY_FORMS}")
        elif not _PLAIN_KEY.fullmatch(self.key):
            raise ValueError(f"key: holds a space or a character a header cannot carry; expected {_KEY_FORMS}")

    @property
    def digest(self) -> bytes:
        """The key's SHA-256 digest (32 bytes), computed for a plain key."""
        if self.key.startswith(HASHED_PREFIX):
            return bytes.fromhex(self.key[len(HASHED_PREFIX) :])
        return key_digest(self.key.encode("ascii"))


class Consumer(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One consumer (Kong's Consumer entity with its key-auth credentials): ``username``
    (required, unique), ``id`` (UUID, optional: derived from the username), ``custom_id``
    (logged when given), ``tags`` (accepted, unused), ``keyauth_credentials``."""

    username: Annotated[str, msgspec.Meta(min_length=1)]
    id: uuid.UUID | None = None
    custom_id: str | None = None
    tags: tuple[str, ...] = ()
    keyauth_credentials: tuple[KeyauthCredential, ...] = ()

    @property
    def consumer_id(self) -> uuid.UUID:
        """``id``, else a UUID v5 of the username."""
        return self.id or uuid.uuid5(uuid.NAMESPACE_URL, "aimw:consumer:" + self.username)

    def credential_id(self, index: int) -> uuid.UUID:
        """The id of ``keyauth_credentials[index]``: its own, else a UUID v5 of the consumer's
        id and ``index``."""
        own = self.keyauth_credentials[index].id
        return own or uuid.uuid5(uuid.NAMESPACE_URL, f"aimw:keyauth_credential:{self.consumer_id}:{index}")


def key_digest(key: bytes) -> bytes:
    """SHA-256 of a key's bytes (32 bytes): what :func:`keyring` is keyed by."""
    return hashlib.sha256(key).digest()


def keyring(consumers: Iterable[Consumer]) -> dict[bytes, AuthenticatedConsumer]:
    """Each key's SHA-256 digest -> the AuthenticatedConsumer it names.

    Raises:
        ValueError: ``consumers: …`` for an empty list or one without any key (a gateway
            nobody could call); ``consumers[i].<field>: …`` for a username, consumer id or
            credential id given twice, or a key given twice (naming the two consumers,
            never the key).
    """
    consumers = tuple(consumers)
    if not consumers:
        raise ValueError("consumers: expected at least one consumer (without consumers the gateway is open)")
    keys: dict[bytes, AuthenticatedConsumer] = {}
    where_key: dict[bytes, str] = {}
    seen: dict[tuple[str, str], str] = {}  # (what, value) -> where it was first given
    for index, consumer in enumerate(consumers):
        here = f"consumers[{index}]"
        consumer_id = str(consumer.consumer_id)
        _once(seen, ("username", consumer.username), f"{here}.username", f"username {consumer.username!r}")
        _once(seen, ("id", consumer_id), f"{here}.id", f"consumer id {consumer_id}")
        for position, credential in enumerate(consumer.keyauth_credentials):
            place = f"{here}.keyauth_credentials[{position}]"
            credential_id = str(consumer.credential_id(position))
            _once(seen, ("credential", credential_id), f"{place}.id", f"credential id {credential_id}")
            digest = credential.digest
            if digest in keys:
                first = keys[digest].username
                raise ValueError(
                    f"{place}.key: the same key as {where_key[digest]} ({first} and {consumer.username}): "
                    "each key must name one consumer"
                )
            keys[digest] = AuthenticatedConsumer(consumer_id, consumer.username, consumer.custom_id, credential_id)
            where_key[digest] = place
    if not keys:
        raise ValueError("consumers: no consumer has keyauth_credentials: nobody could call the gateway")
    return keys


def _once(seen: dict[tuple[str, str], str], item: tuple[str, str], where: str, what: str) -> None:
    first = seen.setdefault(item, where)
    if first != where:
        raise ValueError(f"{where}: {what} is also {first.rsplit('.', 1)[0]}'s; expected each once")
