"""`opencts validate` and `opencts prove` against moto: an untampered chain is valid, and each
way of tampering is named (the exact object) with exit 1."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from chalicelib import validate_cli
from chalicelib.clock import MS_PER_HOUR, FixedClock
from chalicelib.digests import ChainHeads, PublicKeyRegistry, digest_key, string_to_sign
from chalicelib.validator import (
    EXIT_TAMPERED,
    EXIT_UNCHECKED,
    EXIT_VALID,
    DirectorySource,
    Report,
    S3Source,
    Target,
    Validator,
)
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
    make_tracker,
    trace_file_key,
)

START = HOUR0 - MS_PER_HOUR
END = HOUR0 + 4 * MS_PER_HOUR
TARGET = Target(BUCKET, PREFIX, DOMAIN, REGION, TRACKER)


def s3() -> Any:
    return boto3.client("s3", region_name=REGION)


def digest(hour_end: int) -> str:
    return digest_key(PREFIX, DOMAIN, REGION, TRACKER, hour_end)


def uri(key: str) -> str:
    return f"s3://{BUCKET}/{key}"


@pytest.fixture
def chain(services: Services, clock: FixedClock) -> list[str]:
    """Digests ending 10:00 (the first), 11:00 (2 files), 12:00 (none), 13:00 and 14:00."""
    make_tracker(services)
    return build_chain(services, clock, hours=4)


def validate(svc: Services, start: int = START, end: int = END) -> Report:
    table = control(svc)
    head = ChainHeads(table).get(PROJECT, TRACKER)
    validator = Validator(S3Source(s3()), PublicKeyRegistry(table).windows(), workers=4)
    return validator.validate(
        TARGET, start, end, head, chain_start_ms=head.chain_start_ms if head else None
    )


def findings(report: Report) -> set[tuple[str, str]]:
    return {(f.status, f.uri) for f in report.findings}


def test_an_untampered_chain_is_valid(services: Services, chain: list[str]) -> None:
    report = validate(services)
    assert report.exit_code == EXIT_VALID, report.text()
    assert report.findings == []
    assert len(report.periods) == 5
    assert sorted(k for p in report.periods for k in p.files) == sorted(chain)
    assert all(p.status == "valid" for p in report.periods)


def test_a_modified_trace_file_is_named(services: Services, chain: list[str]) -> None:
    s3().put_object(Bucket=BUCKET, Key=chain[0], Body=gzip.compress(b'[{"forged": true}]'))
    report = validate(services)
    assert report.exit_code == EXIT_TAMPERED
    assert findings(report) == {("invalid", uri(chain[0]))}
    assert "hash value" in report.findings[0].reason


def test_a_deleted_trace_file_is_named(services: Services, chain: list[str]) -> None:
    s3().delete_object(Bucket=BUCKET, Key=chain[3])
    report = validate(services)
    assert report.exit_code == EXIT_TAMPERED
    assert findings(report) == {("missing", uri(chain[3]))}


def test_data_after_the_gzip_member_is_named(services: Services, chain: list[str]) -> None:
    body = s3().get_object(Bucket=BUCKET, Key=chain[1])["Body"].read()
    s3().put_object(Bucket=BUCKET, Key=chain[1], Body=body + gzip.compress(b'[{"x": 1}]'))
    report = validate(services)
    assert findings(report) == {("invalid", uri(chain[1]))}
    assert "after the end of the compressed stream" in report.findings[0].reason


def test_a_deleted_newest_digest_is_found_through_the_chain_head(
    services: Services, chain: list[str]
) -> None:
    newest = digest(HOUR0 + 4 * MS_PER_HOUR)
    s3().delete_object(Bucket=BUCKET, Key=newest)
    report = validate(services)
    assert report.exit_code == EXIT_TAMPERED
    assert ("missing", uri(newest)) in findings(report)
    assert "newest" in next(f for f in report.findings if f.uri == uri(newest)).reason
    # Its two files are no longer vouched for by any digest.
    assert {("unverified", uri(k)) for k in chain[4:]} <= findings(report)


def test_two_consecutive_deleted_digests_are_each_named_and_their_files_unverified(
    services: Services, chain: list[str]
) -> None:
    gone = [digest(HOUR0 + 2 * MS_PER_HOUR), digest(HOUR0 + 3 * MS_PER_HOUR)]
    for key in gone:
        s3().delete_object(Bucket=BUCKET, Key=key)
    report = validate(services)
    assert report.exit_code == EXIT_TAMPERED
    assert findings(report) == {("missing", uri(k)) for k in gone} | {
        ("unverified", uri(k)) for k in chain[2:4]
    }


def test_a_trace_file_no_digest_lists_is_named(services: Services, chain: list[str]) -> None:
    # In the range: it is read ahead with the listed files, which must not make it listed.
    injected = trace_file_key(HOUR0 + 2 * MS_PER_HOUR + 600_000, "IAM", 0xDEAD)
    s3().put_object(Bucket=BUCKET, Key=injected, Body=gzip.compress(b"[]"))
    report = validate(services)
    assert findings(report) == {("unlisted", uri(injected))}
    assert report.exit_code == EXIT_TAMPERED


def _resign(services: Services, key: str, change: dict[str, Any]) -> None:
    """Rewrites a digest with KMS, as a compromised writer could: validate-logs accepts it."""
    got = s3().get_object(Bucket=BUCKET, Key=key)
    data = json.loads(gzip.decompress(got["Body"].read()))
    data.update(change)
    raw = json.dumps(data).encode()
    message = string_to_sign(data["digestEndTime"], BUCKET, key,
                             hashlib.sha256(raw).hexdigest(), data["previousDigestSignature"])
    kms = boto3.client("kms", region_name=REGION)
    signature = kms.sign(KeyId=services.settings.digest_kms_key, Message=message,
                         MessageType="RAW", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")
    s3().put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(raw),
                    Metadata={**got["Metadata"], "signature": signature["Signature"].hex()})


def test_a_wrong_previous_digest_hash_is_named(services: Services, chain: list[str]) -> None:
    key = digest(HOUR0 + 3 * MS_PER_HOUR)
    _resign(services, key, {"previousDigestHashValue": "0" * 64})
    report = validate(services)
    newer = digest(HOUR0 + 4 * MS_PER_HOUR)  # chained to the digest as it was before
    assert findings(report) == {("invalid", uri(key)), ("invalid", uri(newer))}
    reasons = {f.uri: f.reason for f in report.findings}
    assert reasons[uri(key)].startswith("previous-digest hash does not match")
    assert reasons[uri(newer)].startswith("previous-digest hash does not match")


def test_a_wrong_signature_is_named(services: Services, chain: list[str]) -> None:
    key = digest(HOUR0 + 2 * MS_PER_HOUR)
    got = s3().get_object(Bucket=BUCKET, Key=key)
    signature = got["Metadata"]["signature"]
    flipped = ("1" if signature[0] == "0" else "0") + signature[1:]
    s3().copy_object(Bucket=BUCKET, Key=key, CopySource={"Bucket": BUCKET, "Key": key},
                     Metadata={**got["Metadata"], "signature": flipped},
                     MetadataDirective="REPLACE")
    report = validate(services)
    assert ("invalid", uri(key)) in findings(report)
    assert "signature verification failed" in next(
        f.reason for f in report.findings if f.uri == uri(key))
    assert report.exit_code == EXIT_TAMPERED


def test_a_digest_whose_file_list_was_edited_fails_its_signature(
    services: Services, chain: list[str]
) -> None:
    key = digest(HOUR0 + MS_PER_HOUR)
    got = s3().get_object(Bucket=BUCKET, Key=key)
    data = json.loads(gzip.decompress(got["Body"].read()))
    data["logFiles"] = data["logFiles"][1:]  # hide a file
    s3().put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(json.dumps(data).encode()),
                    Metadata=got["Metadata"])
    report = validate(services)
    assert ("invalid", uri(key)) in findings(report)
    # Its files are not vouched for by a valid digest any more.
    assert {("unverified", uri(k)) for k in chain[0:2]} <= findings(report)


def test_data_after_a_digest_gzip_member_is_named(services: Services, chain: list[str]) -> None:
    key = digest(HOUR0 + 2 * MS_PER_HOUR)
    got = s3().get_object(Bucket=BUCKET, Key=key)
    s3().put_object(Bucket=BUCKET, Key=key, Body=got["Body"].read() + b"junk",
                    Metadata=got["Metadata"])
    report = validate(services)
    assert ("invalid", uri(key)) in findings(report)
    assert "after the end" in next(f.reason for f in report.findings if f.uri == uri(key))


def test_a_range_inside_the_chain_checks_only_its_hours(
    services: Services, chain: list[str]
) -> None:
    report = validate(services, HOUR0 + MS_PER_HOUR, HOUR0 + 2 * MS_PER_HOUR)
    assert report.exit_code == EXIT_VALID, report.text()
    assert [p.end for p in report.periods] == ["2026-11-20T13:00:00Z", "2026-11-20T12:00:00Z"]


class CountingSource:
    """S3Source that counts what it is asked for (the validator's requests)."""

    def __init__(self) -> None:
        self._s3 = S3Source(s3())
        self.gets: list[str] = []
        self.lists: list[str] = []

    def list(self, bucket: str, prefix: str) -> list[str]:
        self.lists.append(prefix)
        return self._s3.list(bucket, prefix)

    def get(self, bucket: str, key: str) -> Any:
        self.gets.append(key)
        return self._s3.get(bucket, key)


def test_each_object_is_read_once_and_each_folder_listed_once(
    services: Services, chain: list[str]
) -> None:
    table = control(services)
    head = ChainHeads(table).get(PROJECT, TRACKER)
    assert head is not None
    source = CountingSource()
    report = Validator(source, PublicKeyRegistry(table).windows(), workers=3).validate(
        TARGET, START, END, head, chain_start_ms=head.chain_start_ms
    )
    assert report.exit_code == EXIT_VALID, report.text()
    digests = [p.digest for p in report.periods]
    assert sorted(source.gets) == sorted(digests + chain)
    assert len(source.lists) == len(set(source.lists))


def test_no_digest_written_cannot_be_checked(services: Services) -> None:
    make_tracker(services)
    report = validate(services)
    assert report.exit_code == EXIT_UNCHECKED
    assert report.findings == []


# -- the CLI ----------------------------------------------------------------------------------
@pytest.fixture
def cli_settings(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate_cli, "settings_for", lambda stage, domain: services.settings)


def run_cli(*argv: str) -> tuple[int, str]:
    from chalicelib.cli import build_parser  # noqa: PLC0415

    args: argparse.Namespace = build_parser().parse_args(list(argv))
    out = io.StringIO()
    code: int = args.run(args, out)
    return code, out.getvalue()


def test_cli_validate_reports_json_and_exit_codes(
    services: Services, chain: list[str], cli_settings: None
) -> None:
    common = ("validate", "--tracker", TRACKER, "--project", PROJECT,
              "--start", "2026-11-20T09:00:00Z", "--end", "2026-11-20T14:00:00Z")
    code, out = run_cli(*common, "--json")
    assert code == 0
    body = json.loads(out)
    assert body["result"] == "valid"
    assert body["digests"] == {"valid": 5, "total": 5}
    assert body["trace_files"] == {"valid": 6, "total": 6}

    s3().delete_object(Bucket=BUCKET, Key=chain[0])
    code, out = run_cli(*common)
    assert code == 1
    assert f"trace file\t{uri(chain[0])}\tMISSING: not found" in out


def test_cli_validate_refuses_what_it_cannot_check(
    services: Services, chain: list[str], cli_settings: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_cli("validate", "--tracker", "nope", "--project", PROJECT, "--start", "1d")
    assert code == 2
    code, _ = run_cli("validate", "--project", PROJECT, "--start", "2026-11-20",
                      "--end", "2026-11-19")
    assert code == 2
    code, _ = run_cli("validate", "--project", PROJECT, "--start", "yesterday")
    assert code == 2
    for workers in ("0", "65"):
        code, _ = run_cli("validate", "--project", PROJECT, "--start", "1d", "--workers", workers)
        assert code == 2
    assert "could not check" in capsys.readouterr().err


def test_cli_prove_prints_a_verified_inclusion_proof(
    services: Services, chain: list[str], cli_settings: None
) -> None:
    code, out = run_cli("prove", "--project", PROJECT, "--trace-file", chain[3], "--json")
    assert code == 0
    proof = json.loads(out)
    assert proof["verified"] is True
    assert proof["digest_valid"] is True
    assert proof["trace_file"] == uri(chain[3])
    assert proof["digest"] == uri(digest(HOUR0 + 3 * MS_PER_HOUR))
    assert (proof["leaf_index"], proof["tree_size"]) == (1, 2)
    assert len(proof["path"]) == 1
    code, _ = run_cli("prove", "--project", PROJECT, "--trace-file", "not/a/trace/file.json.gz")
    assert code == 2


def test_offline_over_a_local_copy(
    services: Services, chain: list[str], tmp_path: Path, cli_settings: None
) -> None:
    for item in s3().list_objects_v2(Bucket=BUCKET)["Contents"]:
        got = s3().get_object(Bucket=BUCKET, Key=item["Key"])
        path = tmp_path / item["Key"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(got["Body"].read())
        if got["Metadata"]:
            path.with_name(path.name + DirectorySource.METADATA_SUFFIX).write_text(
                json.dumps(got["Metadata"]))
    windows = PublicKeyRegistry(control(services)).windows()
    (tmp_path / "public-keys.json").write_text(json.dumps({"PublicKeyList": [w.wire()
                                                                             for w in windows]}))
    common = ("validate", "--offline", str(tmp_path), "--bucket", BUCKET, "--prefix", PREFIX,
              "--domain-id", DOMAIN, "--start", "2026-11-20T09:00:00Z",
              "--end", "2026-11-20T14:00:00Z", "--json")
    code, out = run_cli(*common)
    assert code == 0, out
    assert any("cannot be detected" in n for n in json.loads(out)["notes"])
    newest = digest(HOUR0 + 4 * MS_PER_HOUR)
    (tmp_path / newest).unlink()
    code, out = run_cli(*common, "--head", newest)
    assert code == 1
    assert {"status": "missing", "kind": "digest", "uri": uri(newest),
            "reason": "not found (the newest digest, named by the chain head)"} in json.loads(
        out)["findings"]
