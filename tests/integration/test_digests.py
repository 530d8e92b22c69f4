"""Digest files on moto: format, signature, chain, Merkle root, idempotence, late and racing
runs, key rotation, and CloudTrail's ListPublicKeys."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from chalicelib import merkle
from chalicelib.clock import MS_PER_HOUR, FixedClock
from chalicelib.digests import (
    MERKLE_FIELD,
    BadRequest,
    ChainHeads,
    DigestWriter,
    PublicKeyRegistry,
    digest_key,
    fingerprint,
    iso,
    list_public_keys,
    pkcs1_from_spki,
    string_to_sign,
)
from chalicelib.resources import rotate_digest_key
from chalicelib.wiring import Services
from tests.conftest import DOMAIN, PROJECT
from tests.integration.digest_support import (
    BUCKET,
    HOUR0,
    PREFIX,
    REGION,
    TRACKER,
    build_chain,
    control,
    deliver,
    head,
    make_tracker,
)


def _s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def digest_keys() -> list[str]:
    listed = _s3().list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/AWSLogs/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def read_digest(key: str) -> tuple[dict[str, Any], bytes, dict[str, str]]:
    got = _s3().get_object(Bucket=BUCKET, Key=key)
    raw = gzip.decompress(got["Body"].read())
    return json.loads(raw), raw, got["Metadata"]


@pytest.fixture
def tracked(services: Services) -> Services:
    make_tracker(services)
    return services


def test_a_chain_of_hourly_digests_in_cloudtrails_format(
    tracked: Services, clock: FixedClock, settings: Any
) -> None:
    files = build_chain(tracked, clock, hours=3)

    keys = digest_keys()
    assert len(keys) == 4  # the hour before HOUR0, then three
    expected = digest_key(PREFIX, DOMAIN, REGION, TRACKER, HOUR0 + MS_PER_HOUR)
    assert expected in keys
    assert expected == (
        f"{PREFIX}/AWSLogs/{DOMAIN}/CloudTrail-Digest/{REGION}/2026/11/20/"
        f"{DOMAIN}_CloudTrail-Digest_{REGION}_{TRACKER}_{REGION}_20261120T110000Z.json.gz"
    )
    kms = boto3.client("kms", region_name=REGION)
    public = kms.get_public_key(KeyId=settings.digest_kms_key)
    verifier = load_der_public_key(public["PublicKey"])
    pkcs1 = verifier.public_bytes(Encoding.DER, PublicFormat.PKCS1)
    assert pkcs1_from_spki(public["PublicKey"]) == pkcs1
    previous: tuple[dict[str, Any], bytes, dict[str, str]] | None = None
    listed = []
    for key in keys:
        data, raw, metadata = read_digest(key)
        assert data["awsAccountId"] == DOMAIN
        assert data["digestS3Bucket"] == BUCKET
        assert data["digestS3Object"] == key
        assert data["digestSignatureAlgorithm"] == "SHA256withRSA"
        assert data["digestPublicKeyFingerprint"] == hashlib.md5(pkcs1).hexdigest()  # noqa: S324
        assert metadata["signature-algorithm"] == "SHA256withRSA"
        assert metadata["signature"] == metadata["signature"].lower()
        message = string_to_sign(
            data["digestEndTime"], BUCKET, key, hashlib.sha256(raw).hexdigest(),
            data["previousDigestSignature"],
        )
        verifier.verify(  # type: ignore[union-attr,call-arg]
            bytes.fromhex(metadata["signature"]), message, padding.PKCS1v15(), hashes.SHA256()
        )
        if previous is None:
            for name in ("previousDigestS3Bucket", "previousDigestS3Object",
                         "previousDigestHashValue", "previousDigestSignature"):
                assert data[name] is None
        else:
            p_data, p_raw, p_meta = previous
            assert data["digestStartTime"] == p_data["digestEndTime"]
            assert data["previousDigestS3Object"] == p_data["digestS3Object"]
            assert data["previousDigestHashValue"] == hashlib.sha256(p_raw).hexdigest()
            assert data["previousDigestHashAlgorithm"] == "SHA-256"
            assert data["previousDigestSignature"] == p_meta["signature"]
        leaves = [merkle.leaf_data(f["hashValue"], f["s3Bucket"], f["s3Object"])
                  for f in data["logFiles"]]
        assert data[MERKLE_FIELD]["rootHash"] == merkle.root(leaves).hex()
        assert data[MERKLE_FIELD]["treeSize"] == len(leaves)
        listed.extend(f["s3Object"] for f in data["logFiles"])
        previous = (data, raw, metadata)
    assert listed == files
    empty, _, _ = read_digest(keys[2])  # the second hour had no file: a digest all the same
    assert empty["logFiles"] == []
    assert empty["newestEventTime"] is None
    assert empty["oldestEventTime"] is None
    assert head(tracked).key == keys[-1]


def test_a_log_file_entry_has_the_hash_of_the_uncompressed_file(
    tracked: Services, clock: FixedClock
) -> None:
    build_chain(tracked, clock, hours=1)
    data, _, _ = read_digest(digest_keys()[-1])
    entry = data["logFiles"][0]
    body = _s3().get_object(Bucket=BUCKET, Key=entry["s3Object"])["Body"].read()
    assert entry["hashValue"] == hashlib.sha256(gzip.decompress(body)).hexdigest()
    assert entry["hashAlgorithm"] == "SHA-256"
    assert entry["s3Bucket"] == BUCKET
    assert entry["newestEventTime"] >= entry["oldestEventTime"]


def test_a_rerun_writes_nothing_and_a_late_run_writes_every_missing_hour_in_order(
    tracked: Services, clock: FixedClock
) -> None:
    assert tracked.digests is not None
    build_chain(tracked, clock, hours=1)
    before = digest_keys()
    assert tracked.digests.run() == []
    assert digest_keys() == before

    deliver(tracked, HOUR0 + MS_PER_HOUR + 60_000)
    clock.current_ms = HOUR0 + 5 * MS_PER_HOUR + 120_000  # four hours late
    written = tracked.digests.run()
    assert [w.key for w in written] == [
        digest_key(PREFIX, DOMAIN, REGION, TRACKER, HOUR0 + h * MS_PER_HOUR) for h in (2, 3, 4, 5)
    ]
    assert [w.files for w in written] == [1, 0, 0, 0]
    assert head(tracked).end_ms == HOUR0 + 5 * MS_PER_HOUR


def test_an_hour_is_digested_only_after_it_has_settled(
    tracked: Services, clock: FixedClock
) -> None:
    assert tracked.digests is not None
    clock.current_ms = HOUR0 + 90_000
    assert [w.key for w in tracked.digests.run()] == [
        digest_key(PREFIX, DOMAIN, REGION, TRACKER, HOUR0)
    ]
    clock.current_ms = HOUR0 + MS_PER_HOUR + 59_999  # HOUR0's hour ended under a minute ago
    assert tracked.digests.run() == []
    clock.current_ms = HOUR0 + MS_PER_HOUR + 60_000
    assert [w.key for w in tracked.digests.run()] == [
        digest_key(PREFIX, DOMAIN, REGION, TRACKER, HOUR0 + MS_PER_HOUR)
    ]


def test_a_crash_after_the_put_is_repaired_by_adopting_the_object(
    tracked: Services, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tracked.digests is not None
    build_chain(tracked, clock, hours=1)
    deliver(tracked, HOUR0 + MS_PER_HOUR + 60_000)
    clock.current_ms = HOUR0 + 2 * MS_PER_HOUR + 120_000

    def crash(self: ChainHeads, *args: Any) -> bool:
        raise RuntimeError("the function was stopped after the put")

    with monkeypatch.context() as m:
        m.setattr(ChainHeads, "advance", crash)
        assert tracked.digests.run() == []  # logged, not raised
    orphan = digest_key(PREFIX, DOMAIN, REGION, TRACKER, HOUR0 + 2 * MS_PER_HOUR)
    assert orphan in digest_keys()
    assert head(tracked).key != orphan

    deliver(tracked, HOUR0 + MS_PER_HOUR + 90_000)  # recorded after the object was written
    written = tracked.digests.run()
    # The object is the truth once written: the file recorded later is in no digest (and the
    # validator reports it as a file no digest lists).
    assert [(w.key, w.adopted, w.files) for w in written] == [(orphan, True, 1)]
    assert head(tracked).key == orphan
    _, raw, metadata = read_digest(orphan)
    assert head(tracked).sha256 == hashlib.sha256(raw).hexdigest()
    assert head(tracked).signature == metadata["signature"]


def test_two_runs_at_once_never_fork_the_chain(
    tracked: Services, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tracked.digests is not None
    build_chain(tracked, clock, hours=1)
    deliver(tracked, HOUR0 + MS_PER_HOUR + 60_000)
    clock.current_ms = HOUR0 + 4 * MS_PER_HOUR + 120_000
    other = DigestWriter(**{**vars(tracked.digests)})
    real_advance = ChainHeads.advance
    raced: list[int] = []

    def advance_after_the_other_run(self: ChainHeads, new_head: Any, previous: Any) -> bool:
        if not raced:
            raced.append(1)
            other.run()  # the other run writes hours 2, 3 and 4 while this one is between calls
        return real_advance(self, new_head, previous)

    monkeypatch.setattr(ChainHeads, "advance", advance_after_the_other_run)
    mine = tracked.digests.run()
    assert mine == []  # lost the race on the first hour, then found nothing left to do
    keys = digest_keys()
    assert len(keys) == 5
    for newer, older in zip(keys[1:], keys, strict=False):
        data, _, _ = read_digest(newer)
        _, raw, meta = read_digest(older)
        assert data["previousDigestS3Object"] == older
        assert data["previousDigestHashValue"] == hashlib.sha256(raw).hexdigest()
        assert data["previousDigestSignature"] == meta["signature"]


def test_rotation_keeps_old_digests_valid_and_list_public_keys_returns_both_windows(
    tracked: Services, clock: FixedClock, settings: Any
) -> None:
    assert tracked.digests is not None
    assert tracked.public_keys is not None
    build_chain(tracked, clock, hours=1)
    first = read_digest(digest_keys()[-1])[0]["digestPublicKeyFingerprint"]
    rotated_at = clock.now_ms() + 60_000
    clock.current_ms = rotated_at
    rotate_digest_key(boto3.client("kms", region_name=REGION), settings.digest_kms_key)
    clock.current_ms = HOUR0 + 2 * MS_PER_HOUR + 120_000
    tracked.digests.run()
    second = read_digest(digest_keys()[-1])[0]["digestPublicKeyFingerprint"]
    assert first != second

    reply = list_public_keys(
        tracked.public_keys, "CloudTrail_20131101.ListPublicKeys",
        json.dumps({"StartTime": HOUR0 // 1000 - 7200, "EndTime": clock.now_ms() // 1000}).encode(),
        clock.now_ms(),
    )
    keys = reply["PublicKeyList"]
    assert [k["Fingerprint"] for k in keys] == [first, second]
    assert keys[0]["ValidityEndTime"] == keys[1]["ValidityStartTime"] == clock.now_ms() / 1000
    assert "ValidityEndTime" not in keys[1]
    for k in keys:
        assert fingerprint(base64.b64decode(k["Value"])) == k["Fingerprint"]
    # A window that ended before the range is not returned.
    later = list_public_keys(
        tracked.public_keys, "CloudTrail_20131101.ListPublicKeys",
        json.dumps({"StartTime": clock.now_ms() // 1000 + 1}).encode() if False else
        json.dumps({"StartTime": clock.now_ms() // 1000 + 1,
                    "EndTime": clock.now_ms() // 1000 + 2}).encode(),
        clock.now_ms(),
    )
    assert [k["Fingerprint"] for k in later["PublicKeyList"]] == [second]
    windows = PublicKeyRegistry(control(tracked)).windows()
    assert [w.valid_to_ms for w in windows] == [clock.now_ms(), None]


@pytest.mark.parametrize(
    ("target", "body", "code"),
    [
        ("CloudTrail_20131101.DescribeTrails", b"{}", "UnknownOperationException"),
        ("", b"{}", "UnknownOperationException"),
        ("CloudTrail_20131101.ListPublicKeys", b"{not json", "SerializationException"),
        ("CloudTrail_20131101.ListPublicKeys", b"[]", "SerializationException"),
        ("CloudTrail_20131101.ListPublicKeys", b'{"StartTime": "x"}', "ValidationException"),
        ("CloudTrail_20131101.ListPublicKeys", b'{"StartTime": true}', "ValidationException"),
        ("CloudTrail_20131101.ListPublicKeys", b'{"StartTime": -1}', "ValidationException"),
        ("CloudTrail_20131101.ListPublicKeys", b'{"EndTime": 32503680000}', "ValidationException"),
        ("CloudTrail_20131101.ListPublicKeys", b'{"Other": 1}', "ValidationException"),
        ("CloudTrail_20131101.ListPublicKeys", b'{"StartTime": 20, "EndTime": 10}',
         "InvalidTimeRangeException"),
    ],
)
def test_list_public_keys_refuses_bad_requests(
    tracked: Services, target: str, body: bytes, code: str
) -> None:
    assert tracked.public_keys is not None
    with pytest.raises(BadRequest) as caught:
        list_public_keys(tracked.public_keys, target, body, HOUR0)
    assert caught.value.code == code
    assert caught.value.body()["__type"] == code
    assert caught.value.body()["error_code"] == "CTS.0400"


def test_list_public_keys_at_the_edge_of_its_range(tracked: Services, clock: FixedClock) -> None:
    assert tracked.public_keys is not None
    assert tracked.digests is not None
    clock.current_ms = HOUR0
    tracked.digests.run()
    edge = HOUR0 // 1000
    ok = list_public_keys(tracked.public_keys, "CloudTrail_20131101.ListPublicKeys",
                          json.dumps({"StartTime": 0, "EndTime": edge}).encode(), HOUR0)
    assert len(ok["PublicKeyList"]) == 1
    before = list_public_keys(tracked.public_keys, "CloudTrail_20131101.ListPublicKeys",
                              json.dumps({"StartTime": 0, "EndTime": edge - 1}).encode(), HOUR0)
    assert before["PublicKeyList"] == []
    assert iso(HOUR0) == "2026-11-20T10:00:00Z"


def test_trackers_without_validation_or_transfer_get_no_digest(
    services: Services, clock: FixedClock
) -> None:
    assert services.digests is not None
    _s3().create_bucket(Bucket=BUCKET)
    services.trackers.create_tracker(
        PROJECT,
        {"tracker_type": "system", "tracker_name": TRACKER,
         "obs_info": {"bucket_name": BUCKET, "file_prefix_name": PREFIX}},
    )
    clock.current_ms = HOUR0 + 120_000
    assert services.digests.run() == []
    assert digest_keys() == []


def test_list_public_keys_over_the_api_needs_no_signature(
    tracked: Services, clock: FixedClock, client: Any
) -> None:
    assert tracked.digests is not None
    clock.current_ms = HOUR0 + 90_000
    tracked.digests.run()
    headers = {"Content-Type": "application/x-amz-json-1.1",
               "X-Amz-Target": "CloudTrail_20131101.ListPublicKeys"}
    ok = client.unsigned.http.post("/", headers=headers, body=b"{}")
    assert ok.status_code == 200
    assert ok.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert len(json.loads(ok.body)["PublicKeyList"]) == 1
    wrong = client.unsigned.http.post(
        "/", headers={**headers, "X-Amz-Target": "CloudTrail_20131101.DeleteTrail"}, body=b"{}"
    )
    assert wrong.status_code == 400
    assert json.loads(wrong.body)["__type"] == "UnknownOperationException"
    # Other routes still refuse unsigned requests.
    assert client.unsigned.http.get(f"/v3/{PROJECT}/traces").status_code == 401


def test_list_trackers_shows_the_state_of_the_digest_chain(
    tracked: Services, clock: FixedClock
) -> None:
    def integrity() -> dict[str, Any]:
        listed = tracked.trackers.list_trackers(PROJECT, {"tracker_name": [TRACKER]})
        state: dict[str, Any] = listed["trackers"][0]["integrity"]
        return state

    assert integrity() == {"status": "none"}
    build_chain(tracked, clock, hours=1)
    newest = head(tracked)
    assert integrity() == {
        "status": "current",
        "last_digest_time": newest.end_ms,
        "last_digest": f"s3://{BUCKET}/{newest.key}",
    }
    # Two periods without a digest: the digest function is not keeping up.
    clock.current_ms = newest.end_ms + 2 * MS_PER_HOUR + 1
    assert integrity()["status"] == "behind"
