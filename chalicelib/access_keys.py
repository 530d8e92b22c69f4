"""Access keys (AK/SK): who a signed request comes from, and what it may do.

A key belongs to a user (id, name) of a domain, reaches only its projects, and carries a policy
(chalicelib.permissions). Its secret is shown once, when the key is created; the control table
keeps it only encrypted with KMS, so reading the table does not give anyone a usable key.

Control-table items:

- `AK#<access_key_id>` / `META`: the key, its status and the KMS ciphertext of the secret
  (base64);
- `KEYS#<domain_id>` / `AK#<access_key_id>`: the domain's listing entry.

Every API call needs the secret of the key that signed it, and a KMS Decrypt per call would add
latency and cost, so each container keeps decrypted secrets for `CACHE_MS` (60 s), with their
key record. The price: a key that is disabled or deleted keeps working for up to a minute in
containers that used it just before (the container that disabled it forgets it at once). Unknown
ids are cached too, in a bounded cache, so guessing ids cannot make every request read the table.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import string
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from chalicelib.clock import Clock
from chalicelib.control import ControlTable, Item
from chalicelib.errors import invalid_parameter, not_found
from chalicelib.model import check_project_id
from chalicelib.permissions import Policy, check_policy

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

ACCESS_KEY_ID_LENGTH = 20
SECRET_LENGTH = 40
ACCESS_KEY_ID_ALPHABET = string.ascii_uppercase + string.digits
SECRET_ALPHABET = string.ascii_letters + string.digits
CACHE_MS = 60_000
CACHE_ENTRIES = 4096
MAX_NAME_LENGTH = 64
MAX_PROJECTS = 100
_ACCESS_KEY_ID_RE = re.compile(r"^[A-Z0-9]{20}$")

Status = Literal["active", "disabled"]
ACTIVE: Status = "active"
DISABLED: Status = "disabled"


# -- encryption of secrets -------------------------------------------------------------------------
class Encryptor(Protocol):
    def encrypt(self, plaintext: bytes) -> bytes: ...

    def decrypt(self, ciphertext: bytes) -> bytes: ...


class KmsEncryptor:
    """A KMS key encrypts the secrets directly: a secret is 40 bytes, far below Encrypt's 4 KiB."""

    def __init__(self, client: KMSClient, key_id: str) -> None:
        self._client = client
        self._key_id = key_id

    def encrypt(self, plaintext: bytes) -> bytes:
        return self._client.encrypt(KeyId=self._key_id, Plaintext=plaintext)["CiphertextBlob"]

    def decrypt(self, ciphertext: bytes) -> bytes:
        # KeyId pins the key: a ciphertext made with another key of the account is refused.
        return self._client.decrypt(KeyId=self._key_id, CiphertextBlob=ciphertext)["Plaintext"]


class MemoryEncryptor:
    """For unit tests and benchmarks: a keystream from a per-instance random key. Not for
    production, but never the identity, so a test still sees a secret stored in clear."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def _stream(self, nonce: bytes, size: int) -> bytes:
        return hashlib.shake_256(self._key + nonce).digest(size)

    def encrypt(self, plaintext: bytes) -> bytes:
        nonce = secrets.token_bytes(16)
        stream = self._stream(nonce, len(plaintext))
        return nonce + bytes(a ^ b for a, b in zip(plaintext, stream, strict=True))

    def decrypt(self, ciphertext: bytes) -> bytes:
        nonce, body = ciphertext[:16], ciphertext[16:]
        stream = self._stream(nonce, len(body))
        return bytes(a ^ b for a, b in zip(body, stream, strict=True))


# -- the key ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyUser:
    id: str
    name: str


@dataclass(frozen=True)
class AccessKey:
    access_key_id: str
    user: KeyUser
    domain_id: str
    project_ids: tuple[str, ...]
    policy: Policy
    status: Status
    created_at: int

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    def to_dict(self) -> dict[str, Any]:
        """The key as `opencts keys list` shows it: never the secret."""
        return {
            "access_key_id": self.access_key_id,
            "user": {"id": self.user.id, "name": self.user.name},
            "domain_id": self.domain_id,
            "project_ids": list(self.project_ids),
            "policy": self.policy if isinstance(self.policy, str) else list(self.policy),
            "status": self.status,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class NewAccessKey:
    """A key just created, with its secret: the only time the secret is available."""

    key: AccessKey
    secret: str = field(repr=False)


def _meta_key(access_key_id: str) -> tuple[str, str]:
    return f"AK#{access_key_id}", "META"


def _listing_key(domain_id: str, access_key_id: str) -> tuple[str, str]:
    return f"KEYS#{domain_id}", f"AK#{access_key_id}"


def _from_item(item: Item) -> AccessKey:
    policy = item["policy"]
    return AccessKey(
        access_key_id=str(item["access_key_id"]),
        user=KeyUser(str(item["user_id"]), str(item["user_name"])),
        domain_id=str(item["domain_id"]),
        project_ids=tuple(str(p) for p in item.get("project_ids", [])),
        policy=policy if isinstance(policy, str) else tuple(str(a) for a in policy),
        status=DISABLED if item.get("status") == DISABLED else ACTIVE,
        created_at=int(item["created_at"]),
    )


def _check_name(name: str, value: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_NAME_LENGTH or not value.isprintable():
        raise invalid_parameter(name, f"must be 1-{MAX_NAME_LENGTH} printable characters")
    return value


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass
class _Cached:
    fetched_at: int
    key: AccessKey | None
    secret: str | None


@dataclass
class AccessKeyStore:
    """Keys in the control table. Built once per container (like ProjectRegistry), so that its
    cache of decrypted secrets serves every request the container handles."""

    table: ControlTable
    encryptor: Encryptor
    clock: Clock
    cache_ms: int = CACHE_MS
    _cache: OrderedDict[str, _Cached] = field(default_factory=OrderedDict)

    # -- management ------------------------------------------------------------------------------
    def create(
        self,
        *,
        user: KeyUser,
        domain_id: str,
        project_ids: Sequence[str],
        policy: str | Sequence[str],
    ) -> NewAccessKey:
        """A new active key and its secret. The caller shows the secret once; it is not kept."""
        user = KeyUser(_check_name("user.id", user.id), _check_name("user.name", user.name))
        domain_id = _check_name("domain_id", domain_id)
        projects = tuple(dict.fromkeys(check_project_id(p) for p in project_ids))
        if not projects or len(projects) > MAX_PROJECTS:
            raise invalid_parameter("project_ids", f"give 1-{MAX_PROJECTS} projects")
        stored_policy = check_policy(policy)
        # 36**20 possible ids make a collision unthinkable; checking costs one read per key.
        access_key_id = _random(ACCESS_KEY_ID_ALPHABET, ACCESS_KEY_ID_LENGTH)
        while self.table.get(*_meta_key(access_key_id)) is not None:
            access_key_id = _random(ACCESS_KEY_ID_ALPHABET, ACCESS_KEY_ID_LENGTH)
        secret = _random(SECRET_ALPHABET, SECRET_LENGTH)
        key = AccessKey(
            access_key_id=access_key_id,
            user=user,
            domain_id=domain_id,
            project_ids=projects,
            policy=stored_policy,
            status=ACTIVE,
            created_at=self.clock.now_ms(),
        )
        ciphertext = base64.b64encode(self.encryptor.encrypt(secret.encode("ascii"))).decode()
        pk, sk = _meta_key(access_key_id)
        self.table.put(
            {
                "pk": pk,
                "sk": sk,
                "access_key_id": access_key_id,
                "user_id": user.id,
                "user_name": user.name,
                "domain_id": domain_id,
                "project_ids": list(projects),
                "policy": stored_policy if isinstance(stored_policy, str) else list(stored_policy),
                "status": ACTIVE,
                "created_at": key.created_at,
                "secret_ciphertext": ciphertext,
            }
        )
        listing_pk, listing_sk = _listing_key(domain_id, access_key_id)
        self.table.put({"pk": listing_pk, "sk": listing_sk, "created_at": key.created_at})
        self._cache.pop(access_key_id, None)
        return NewAccessKey(key, secret)

    def get(self, access_key_id: str) -> AccessKey | None:
        """Read from the table (never the cache): what management commands show."""
        item = self.table.get(*_meta_key(access_key_id))
        return _from_item(item) if item else None

    def require(self, access_key_id: str) -> AccessKey:
        key = self.get(access_key_id)
        if key is None:
            raise not_found(f"access key {access_key_id}")
        return key

    def list(self, domain_id: str) -> list[AccessKey]:
        keys = []
        for entry in self.table.query(f"KEYS#{domain_id}", "AK#"):
            key = self.get(entry["sk"].removeprefix("AK#"))
            if key is not None:  # a delete interrupted between its two writes
                keys.append(key)
        return sorted(keys, key=lambda k: (k.created_at, k.access_key_id))

    def disable(self, access_key_id: str) -> AccessKey:
        """Stops the key within CACHE_MS everywhere, at once in this container."""
        return self._set_status(access_key_id, DISABLED)

    def enable(self, access_key_id: str) -> AccessKey:
        return self._set_status(access_key_id, ACTIVE)

    def delete(self, access_key_id: str) -> None:
        key = self.require(access_key_id)
        # The key item first: once it is gone the key no longer authenticates anywhere.
        self.table.delete(*_meta_key(access_key_id))
        self.table.delete(*_listing_key(key.domain_id, access_key_id))
        self._cache.pop(access_key_id, None)

    def _set_status(self, access_key_id: str, status: Status) -> AccessKey:
        item = self.table.get(*_meta_key(access_key_id))
        if item is None:
            raise not_found(f"access key {access_key_id}")
        item["status"] = status
        item["updated_at"] = self.clock.now_ms()
        self.table.put(item)
        self._cache.pop(access_key_id, None)
        return _from_item(item)

    # -- authentication --------------------------------------------------------------------------
    def secret_for(self, access_key_id: str) -> str | None:
        """The secret of an active key, or None when the key is unknown or disabled.

        The lookup `chalicelib.signing.verify` takes. Answers from the container's cache when the
        entry is younger than `cache_ms`.
        """
        return self._lookup(access_key_id).secret

    def active_key(self, access_key_id: str) -> AccessKey | None:
        """The active key (same cache as secret_for): what to authorize after verify()."""
        return self._lookup(access_key_id).key

    def _lookup(self, access_key_id: str) -> _Cached:
        now = self.clock.now_ms()
        cached = self._cache.get(access_key_id)
        if cached is not None and now - cached.fetched_at < self.cache_ms:
            self._cache.move_to_end(access_key_id)
            return cached
        entry = _Cached(now, None, None)
        if _ACCESS_KEY_ID_RE.match(access_key_id):
            item = self.table.get(*_meta_key(access_key_id))
            if item is not None and item.get("status") == ACTIVE:
                secret = self._decrypt(item)
                if secret is not None:
                    entry = _Cached(now, _from_item(item), secret)
        self._cache[access_key_id] = entry
        self._cache.move_to_end(access_key_id)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return entry

    def _decrypt(self, item: Item) -> str | None:
        """None for an item without a readable ciphertext; KMS errors propagate (a 500 that the
        operator sees, rather than every key silently refused)."""
        try:
            return self.encryptor.decrypt(base64.b64decode(item["secret_ciphertext"])).decode(
                "ascii"
            )
        except (KeyError, ValueError):
            return None
