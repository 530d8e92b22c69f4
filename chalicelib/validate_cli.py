"""`opencts validate` and `opencts prove`: integrity checks of a tracker's trace files, read
directly from the stage's bucket and control table with the operator's AWS credentials (like
`opencts keys`), or offline from a local copy.

Target: `--stage S` uses the stage's default names in the account and region of the environment;
without `--stage`, the local stack described by the nearest `.opencts/local.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from chalicelib.admin import find_local_state, settings_for
from chalicelib.aws import pooled_clients
from chalicelib.clock import SystemClock
from chalicelib.control import DynamoControlTable
from chalicelib.digests import ChainHead, ChainHeads, KeyWindow, PublicKeyRegistry, key_end_ms
from chalicelib.tracker_model import Tracker, tracker_key
from chalicelib.validator import (
    DEFAULT_WORKERS,
    EXIT_TAMPERED,
    EXIT_UNCHECKED,
    EXIT_VALID,
    DigestFile,
    DirectorySource,
    ObjectSource,
    S3Source,
    Target,
    Validator,
    digest_covering,
    parse_cli_time,
    prove,
    trace_file_time,
)

PUBLIC_KEYS_FILE = "public-keys.json"


def add_parser(subparsers: Any) -> None:
    validate = subparsers.add_parser(
        "validate",
        help="check a tracker's digests and trace files (exit 0 valid, 1 tampered, 2 unchecked)",
    )
    validate.set_defaults(run=run_validate)
    _common(validate)
    validate.add_argument("--start", required=True, help="2026-11-20T12:00:00Z, 2026-11-20, 6h")
    validate.add_argument("--end", help="default: now")
    validate.add_argument(
        "--offline",
        metavar="DIR",
        type=Path,
        help="a local copy of the bucket (keys as paths, `<key>.metadata.json` beside each "
        f"digest, {PUBLIC_KEYS_FILE} from ListPublicKeys); needs --bucket",
    )
    validate.add_argument("--bucket", help="offline: the bucket the copy was taken from")
    validate.add_argument("--prefix", default="", help="offline: the tracker's file prefix")
    validate.add_argument("--region", help="offline: the region (default: us-east-1)")
    validate.add_argument("--domain-id", help="offline: the domain (account) id in digest keys")
    validate.add_argument(
        "--head", metavar="KEY", help="offline: the newest digest's key, as the chain head says"
    )
    validate.add_argument("--workers", type=int, default=16, help="parallel downloads (1-64)")
    validate.add_argument("--json", action="store_true", help="the report as JSON")
    validate.add_argument("--verbose", action="store_true", help="every digest and file")

    proof = subparsers.add_parser(
        "prove", help="print and verify the Merkle inclusion proof of a trace file"
    )
    proof.set_defaults(run=run_prove)
    _common(proof)
    proof.add_argument("--trace-file", required=True, metavar="KEY", help="the trace file's key")
    proof.add_argument("--json", action="store_true")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracker", default="system", help="tracker name (default: system)")
    parser.add_argument("--stage", help="deployment stage; default: the local stack")
    parser.add_argument("--project", default=argparse.SUPPRESS, help="the tracker's project")


class _Unchecked(Exception):
    """The check could not be made: exit 2 with this message."""


def _online(
    args: argparse.Namespace,
) -> tuple[ObjectSource, Target, ChainHead | None, list[KeyWindow]]:
    settings = settings_for(args.stage, None)
    # One connection per download thread (and one for the listings beside them).
    dynamodb, s3 = pooled_clients(
        ("dynamodb", "s3"),
        settings.region,
        settings.aws_endpoint,
        getattr(args, "workers", DEFAULT_WORKERS) + 1,
        user_agent="opencts-validate",
    )
    project = getattr(args, "project", None) or (find_local_state() or {}).get("project_id")
    if not project:
        raise _Unchecked("give --project (no .opencts/local.json to take it from)")
    control = DynamoControlTable(dynamodb, settings.control_table)
    item = control.get(*tracker_key(project, args.tracker))
    if item is None:
        raise _Unchecked(f"no tracker {args.tracker!r} in project {project}")
    tracker = Tracker.from_item(item)
    if not tracker.obs_info.bucket_name:
        raise _Unchecked(f"tracker {args.tracker} transfers no trace files")
    target = Target(
        bucket=tracker.obs_info.bucket_name,
        prefix=tracker.obs_info.file_prefix_name,
        domain_id=tracker.domain_id or settings.domain_id,
        region=settings.region,
        tracker_name=tracker.tracker_name,
    )
    head = ChainHeads(control).get(project, tracker.tracker_name)
    return S3Source(s3), target, head, PublicKeyRegistry(control).windows()


def _offline(args: argparse.Namespace) -> tuple[ObjectSource, Target, list[KeyWindow]]:
    root: Path = args.offline
    if not root.is_dir():
        raise _Unchecked(f"{root} is not a directory")
    if not args.bucket:
        raise _Unchecked("--offline needs --bucket (digests name the bucket they were put in)")
    domain = args.domain_id or (find_local_state() or {}).get("domain_id", "000000000000")
    region = args.region or "us-east-1"
    keys: list[KeyWindow] = []
    listing = root / PUBLIC_KEYS_FILE
    if listing.is_file():
        import base64  # noqa: PLC0415

        for k in json.loads(listing.read_text()).get("PublicKeyList", []):
            end = k.get("ValidityEndTime")
            keys.append(
                KeyWindow(
                    "",
                    base64.b64decode(k["Value"]),
                    int(float(k["ValidityStartTime"]) * 1000),
                    int(float(end) * 1000) if end is not None else None,
                )
            )
    target = Target(args.bucket, args.prefix, str(domain), region, args.tracker)
    return DirectorySource(root), target, keys


def _progress(stream: TextIO) -> Any:
    if not stream.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = 30
        filled = width * done // max(total, 1)
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            stream.write("\r" + " " * (width + 24) + "\r")
        stream.flush()

    return show


def run_validate(args: argparse.Namespace, out: TextIO) -> int:
    now = SystemClock().now_ms()
    try:
        start = parse_cli_time(args.start, now)
        end = parse_cli_time(args.end, now) if args.end else now
        if start >= end:
            raise _Unchecked("--start must be before --end")
        if not 1 <= args.workers <= 64:
            raise _Unchecked("--workers must be between 1 and 64")
        if args.offline:
            source, target, keys = _offline(args)
            head = None
            if args.head:
                head = ChainHead(
                    "", args.tracker, target.bucket, args.head, "", "", 0, key_end_ms(args.head), 0
                )
            validator = Validator(source, keys, args.workers, _progress(sys.stderr))
            report = validator.validate(target, start, end, head, head_known=head is not None)
        else:
            source, target, head, keys = _online(args)
            validator = Validator(source, keys, args.workers, _progress(sys.stderr))
            report = validator.validate(
                target, start, end, head, chain_start_ms=head.chain_start_ms if head else None
            )
    except (_Unchecked, ValueError) as e:
        print(f"opencts validate: could not check: {e}", file=sys.stderr)
        return EXIT_UNCHECKED
    if args.json:
        print(json.dumps(report.to_json(), indent=2), file=out)
    else:
        print(report.text(args.verbose), file=out)
    return report.exit_code


def run_prove(args: argparse.Namespace, out: TextIO) -> int:
    try:
        source, target, _head, keys = _online(args)
        delivered = trace_file_time(args.trace_file)
        if delivered is None:
            raise _Unchecked(f"{args.trace_file} is not a trace file name (SPEC 8)")
        validator = Validator(source, keys)
        for key in digest_covering(source, target, delivered):
            d = DigestFile(key, key_end_ms(key))
            validator.load_digests(target, {d.end_ms: d})
            if d.data is None:
                continue
            try:
                proof = prove(d.data, target.bucket, args.trace_file)
            except LookupError:
                continue
            body = {
                **proof.to_json(),
                "digest_valid": d.problem is None,
                "digest_problem": d.problem,
            }
            if args.json:
                print(json.dumps(body, indent=2), file=out)
            else:
                print(_proof_text(body), file=out)
            return EXIT_VALID if proof.verified and d.problem is None else EXIT_TAMPERED
        raise _Unchecked(f"no digest lists {args.trace_file}")
    except _Unchecked as e:
        print(f"opencts prove: could not check: {e}", file=sys.stderr)
        return EXIT_UNCHECKED


def _proof_text(body: dict[str, Any]) -> str:
    lines = [
        f"trace file  {body['trace_file']}",
        f"digest      {body['digest']}  ({'valid' if body['digest_valid'] else 'INVALID: ' + str(body['digest_problem'])})",  # noqa: E501
        f"leaf        {body['leaf_index']} of {body['tree_size']}",
        f"root        {body['root']}",
        "audit path  " + ("\n            ".join(body["path"]) or "(empty: a one-leaf tree)"),
        "proof       " + ("verified" if body["verified"] else "DOES NOT VERIFY"),
    ]
    return "\n".join(lines)


__all__ = ["EXIT_TAMPERED", "add_parser"]
