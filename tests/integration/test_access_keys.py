"""Access keys on both storage twins: the in-memory table with a test encryptor, and the DynamoDB
control table with KMS (moto). One suite, two backends (the Chalice todo-app pattern)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.access_keys import (
    CACHE_MS,
    AccessKeyStore,
    Encryptor,
    KeyUser,
    KmsEncryptor,
    MemoryEncryptor,
)
from chalicelib.clock import FixedClock
from chalicelib.config import Settings
from chalicelib.control import ControlTable, DynamoControlTable, Item, MemoryControlTable
from chalicelib.errors import CtsError
from chalicelib.permissions import FULL_ACCESS, READ_ONLY_ACCESS, Forbidden, authorize
from chalicelib.signing import NotAuthenticated, SignedRequest, sign, verify
from tests.conftest import DOMAIN, NOW_MS, OTHER_PROJECT, PROJECT

OTHER_DOMAIN = "210987654321"
ALICE = KeyUser("u-alice", "alice")
BOB = KeyUser("u-bob", "bob")


class CountingTable:
    """A ControlTable that counts reads, to see what the cache saves."""

    def __init__(self, inner: ControlTable) -> None:
        self.inner = inner
        self.gets = 0

    def get(self, pk: str, sk: str) -> Item | None:
        self.gets += 1
        return self.inner.get(pk, sk)

    def put(self, item: Item) -> None:
        self.inner.put(item)

    def put_many(self, items: list[Item]) -> None:
        self.inner.put_many(items)

    def query(self, pk: str, sk_prefix: str = "") -> list[Item]:
        return self.inner.query(pk, sk_prefix)

    def delete(self, pk: str, sk: str) -> None:
        self.inner.delete(pk, sk)


@dataclass
class Backend:
    table: CountingTable
    encryptor: Encryptor
    clock: FixedClock

    def store(self) -> AccessKeyStore:
        """A store as one container builds it: its own cache over the shared table."""
        return AccessKeyStore(self.table, self.encryptor, self.clock)


@pytest.fixture(params=["memory", "dynamodb+kms"])
def backend(request: pytest.FixtureRequest, clock: FixedClock) -> Iterator[Backend]:
    if request.param == "memory":
        yield Backend(CountingTable(MemoryControlTable()), MemoryEncryptor(), clock)
        return
    created: dict[str, str] = request.getfixturevalue("created")
    settings: Settings = request.getfixturevalue("settings")
    dynamodb = boto3.client("dynamodb", region_name=settings.region)
    kms = boto3.client("kms", region_name=settings.region)
    key_id = kms.create_key(Description="opencts access keys")["KeyMetadata"]["KeyId"]
    table = DynamoControlTable(dynamodb, created["control_table"])
    yield Backend(CountingTable(table), KmsEncryptor(kms, key_id), clock)


def create(store: AccessKeyStore, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "user": ALICE,
        "domain_id": DOMAIN,
        "project_ids": [PROJECT],
        "policy": FULL_ACCESS,
        **overrides,
    }
    return store.create(**arguments)


# -- create, get, list -----------------------------------------------------------------------------
def test_create_returns_the_secret_once_and_stores_it_only_encrypted(backend: Backend) -> None:
    store = backend.store()
    new = create(store, project_ids=[PROJECT, OTHER_PROJECT, PROJECT])

    assert re.fullmatch(r"[A-Z0-9]{20}", new.key.access_key_id)
    assert re.fullmatch(r"[A-Za-z0-9]{40}", new.secret)
    assert new.secret not in repr(new)
    key = store.get(new.key.access_key_id)
    assert key == new.key
    assert key is not None
    assert key.to_dict() == {
        "access_key_id": new.key.access_key_id,
        "user": {"id": "u-alice", "name": "alice"},
        "domain_id": DOMAIN,
        "project_ids": [PROJECT, OTHER_PROJECT],
        "policy": FULL_ACCESS,
        "status": "active",
        "created_at": NOW_MS,
    }
    stored = backend.table.inner.get(f"AK#{new.key.access_key_id}", "META")
    assert stored is not None
    assert new.secret not in json.dumps(stored)
    ciphertext = base64.b64decode(stored["secret_ciphertext"])
    assert backend.encryptor.decrypt(ciphertext) == new.secret.encode()


def test_every_key_gets_its_own_id_and_secret(backend: Backend) -> None:
    store = backend.store()
    keys = [create(store) for _ in range(5)]
    assert len({k.key.access_key_id for k in keys}) == 5
    assert len({k.secret for k in keys}) == 5


def test_custom_policies_are_stored_as_sorted_actions(backend: Backend) -> None:
    store = backend.store()
    new = create(store, policy=["cts:tracker:*", "cts:trace:list"])
    assert new.key.policy == ("cts:trace:list", "cts:tracker:*")
    assert store.get(new.key.access_key_id) == new.key
    assert store.active_key(new.key.access_key_id) == new.key


def test_list_shows_the_domains_keys_in_creation_order(backend: Backend) -> None:
    store = backend.store()
    first = create(store)
    backend.clock.advance(1000)
    second = create(store, user=BOB, policy=READ_ONLY_ACCESS)
    create(store, domain_id=OTHER_DOMAIN)

    assert store.list(DOMAIN) == [first.key, second.key]
    assert [k.user.name for k in store.list(OTHER_DOMAIN)] == ["alice"]
    assert store.list("999999999999") == []


@pytest.mark.parametrize(
    ("overrides", "parameter"),
    [
        ({"project_ids": []}, "project_ids"),
        ({"project_ids": ["bad project"]}, "project_id"),
        ({"policy": "CTS Root"}, "policy"),
        ({"policy": ["cts:trace:delete"]}, "policy"),
        ({"user": KeyUser("", "alice")}, "user.id"),
        ({"user": KeyUser("u-1", "x" * 65)}, "user.name"),
        ({"domain_id": " "}, "domain_id"),
    ],
)
def test_create_refuses_invalid_keys(
    backend: Backend, overrides: dict[str, Any], parameter: str
) -> None:
    store = backend.store()
    with pytest.raises(CtsError) as caught:
        create(store, **overrides)
    assert caught.value.code == "CTS.0001"
    assert f"'{parameter}'" in caught.value.message
    assert store.list(DOMAIN) == []


# -- disable, enable, delete -----------------------------------------------------------------------
def test_a_disabled_key_has_no_secret_until_enabled(backend: Backend) -> None:
    store = backend.store()
    new = create(store)
    key_id = new.key.access_key_id
    assert store.secret_for(key_id) == new.secret

    assert store.disable(key_id).status == "disabled"
    assert store.secret_for(key_id) is None
    assert store.active_key(key_id) is None
    assert store.list(DOMAIN)[0].status == "disabled"

    assert store.enable(key_id).active
    assert store.secret_for(key_id) == new.secret


def test_delete_removes_the_key_and_its_listing(backend: Backend) -> None:
    store = backend.store()
    kept = create(store)
    gone = create(store)
    store.delete(gone.key.access_key_id)

    assert store.get(gone.key.access_key_id) is None
    assert store.secret_for(gone.key.access_key_id) is None
    assert store.list(DOMAIN) == [kept.key]


@pytest.mark.parametrize("operation", ["disable", "enable", "delete", "require"])
def test_managing_an_unknown_key_is_not_found(backend: Backend, operation: str) -> None:
    store = backend.store()
    with pytest.raises(CtsError) as caught:
        getattr(store, operation)("AAAAAAAAAAAAAAAAAAAA")
    assert caught.value.status == 404


# -- the per-container cache -----------------------------------------------------------------------
def test_another_container_stops_honouring_a_disabled_key_within_a_minute(
    backend: Backend,
) -> None:
    admin, api = backend.store(), backend.store()
    new = create(admin)
    key_id = new.key.access_key_id
    assert api.secret_for(key_id) == new.secret  # the API container caches it

    admin.disable(key_id)
    backend.clock.advance(CACHE_MS - 1)
    assert api.secret_for(key_id) == new.secret  # still cached: the documented minute
    backend.clock.advance(1)
    assert api.secret_for(key_id) is None


def test_the_cache_reads_the_table_once_a_minute(backend: Backend) -> None:
    store = backend.store()
    new = create(store)
    key_id = new.key.access_key_id
    backend.table.gets = 0

    for _ in range(5):
        assert store.secret_for(key_id) == new.secret
        assert store.active_key(key_id) == new.key
    assert backend.table.gets == 1
    backend.clock.advance(CACHE_MS)
    assert store.secret_for(key_id) == new.secret
    assert backend.table.gets == 2


def test_unknown_ids_are_cached_and_malformed_ids_never_read(backend: Backend) -> None:
    store = backend.store()
    backend.table.gets = 0
    for _ in range(3):
        assert store.secret_for("ZZZZZZZZZZZZZZZZZZZZ") is None
    assert backend.table.gets == 1
    for malformed in ("", "short", "lowercaselowercase12", "A" * 21, "AAAAAAAAAAAAAAAAAAA#"):
        assert store.secret_for(malformed) is None
    assert backend.table.gets == 1


# -- together: sign, verify, authorize -------------------------------------------------------------
def signed_request(key_id: str, secret: str, project: str) -> SignedRequest:
    path = f"/v3/{project}/traces"
    headers = sign(
        access_key_id=key_id,
        secret=secret,
        method="GET",
        host="127.0.0.1:8000",
        path=path,
        query={"limit": "10"},
        headers={"Content-Type": "application/json"},
        now_ms=NOW_MS,
    )
    return SignedRequest("GET", path, {"limit": ["10"]}, headers)


def test_a_created_key_signs_requests_that_verify_and_authorize(backend: Backend) -> None:
    admin, api = backend.store(), backend.store()
    new = create(admin, policy=READ_ONLY_ACCESS)
    key_id = new.key.access_key_id

    assert verify(signed_request(key_id, new.secret, PROJECT), api.secret_for, NOW_MS) == key_id
    key = api.active_key(key_id)
    assert key is not None
    authorize(key, "GET", "/v3/{project_id}/traces", PROJECT)
    with pytest.raises(Forbidden):
        authorize(key, "GET", "/v3/{project_id}/traces", OTHER_PROJECT)
    with pytest.raises(Forbidden):
        authorize(key, "POST", "/v3/{project_id}/traces", PROJECT)

    with pytest.raises(NotAuthenticated):
        verify(signed_request(key_id, "x" * 40, PROJECT), api.secret_for, NOW_MS)
    admin.disable(key_id)
    fresh = backend.store()  # a container that has not cached the key
    with pytest.raises(NotAuthenticated):
        verify(signed_request(key_id, new.secret, PROJECT), fresh.secret_for, NOW_MS)


# -- KMS -------------------------------------------------------------------------------------------
def test_kms_encryptor_takes_an_alias_and_decrypts_only_with_its_key(
    aws: None, settings: Settings
) -> None:
    kms = boto3.client("kms", region_name=settings.region)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/opencts-test-keys", TargetKeyId=key_id)
    other_key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    encryptor = KmsEncryptor(kms, "alias/opencts-test-keys")

    ciphertext = encryptor.encrypt(b"secret")
    assert ciphertext != b"secret"
    assert encryptor.decrypt(ciphertext) == b"secret"
    with pytest.raises(ClientError):
        KmsEncryptor(kms, other_key_id).decrypt(ciphertext)
