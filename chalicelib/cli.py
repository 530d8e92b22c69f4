"""`opencts`: the command line for an OpenCTS endpoint (the local stack by default).

It speaks the public HTTP API only, with the standard library (urllib), so it runs anywhere
Python does and exercises exactly what any other client sees. Without `--endpoint` it finds the
local stack through the nearest `.opencts/local.json` (written by `python -m chalicelib.local`).

Where the endpoint, project and domain come from, first match wins: the flag, then the
environment (OPENCTS_ENDPOINT, OPENCTS_PROJECT, OPENCTS_DOMAIN), then local.json. An explicit
setting beats a discovered one, so a shell pointed at a deployed stack stays pointed at it even
when run inside a checkout that has a local stack.

Every request is signed (SDK-HMAC-SHA256) with an access key: OPENCTS_ACCESS_KEY_ID and
OPENCTS_SECRET_ACCESS_KEY, else local.json's `access_key` (the local stack's demo key). There is
deliberately no flag for them: a secret on a command line ends up in shell histories and `ps`.

Exit codes: 0 done; 1 the service refused (its `error_code: error_msg` is printed) or a reported
trace was rejected or failed; 2 a usage error (bad flag, unreadable input); 3 the endpoint cannot
be reached.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from chalicelib import admin, archive, keys_cli, notifications_cli, signing, validate_cli
from chalicelib import bootstrap as bootstrap_cli
from chalicelib.local.demo import demo_traces
from chalicelib.local.state import STOPPED, find_state, read_state

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3

# The service's limits for one `POST /v3/{project_id}/traces` (SPEC 5), with room for the wrapper.
MAX_TRACES_PER_CALL = 500
MAX_BODY_BYTES = 1024 * 1024 - 1024
DEFAULT_LIMIT = 10
ALL_PAGE_LIMIT = 200
TIMEOUT_SECONDS = 30.0
CELL_WIDTH = 40

FILTERS = (
    ("--trace-type", "trace_type", "system (management traces, default) or data"),
    ("--tracker-name", "tracker_name", "a data tracker's name (with --trace-type data)"),
    ("--service-type", "service_type", "e.g. ECS"),
    ("--user", "user", "the operator's user name"),
    ("--resource-id", "resource_id", None),
    ("--resource-name", "resource_name", None),
    ("--resource-type", "resource_type", None),
    ("--trace-id", "trace_id", "one trace; the other filters are then ignored"),
    ("--trace-name", "trace_name", "the operation, e.g. createServer"),
    ("--trace-rating", "trace_rating", "normal, warning or incident"),
    ("--access-key-id", "access_key_id", None),
    ("--enterprise-project-id", "enterprise_project_id", None),
)
_RELATIVE_RE = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


class Unreachable(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_UNREACHABLE)


class ApiError(CliError):
    """A refusal by the service: CTS's `error_code: error_msg`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}", EXIT_FAILED)
        self.status = status
        self.code = code


# -- time ------------------------------------------------------------------------------------------
def parse_time(text: str, now_ms: int) -> int:
    """Epoch milliseconds, ISO 8601 (UTC when no offset is given), or `30m`/`2h`/`7d` ago."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    relative = _RELATIVE_RE.match(value.lower())
    if relative:
        return now_ms - int(relative.group(1)) * _UNIT_MS[relative.group(2)]
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"cannot read time {text!r}: use epoch milliseconds, ISO 8601 "
            "(2026-11-20T10:00:00Z) or a duration ago (30m, 2h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return int(moment.timestamp() * 1000)


def iso(ms: Any) -> str:
    if not isinstance(ms, int):
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- HTTP ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise CliError(
                f"the service answered {self.status} with a body that is not JSON"
            ) from None


class _UnsignedRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect (the 303 of a large export to its presigned S3 URL) without the
    signature and the signed Host: they are for OpenCTS, and S3 refuses a second credential."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            for name in list(new.headers):
                if name.lower() in ("authorization", "host") or name.lower().startswith("x-sdk-"):
                    new.remove_header(name)
        return new


_OPENER = urllib.request.build_opener(_UnsignedRedirects)


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret: str = field(repr=False)


@dataclass(frozen=True)
class Api:
    endpoint: str
    credentials: Credentials | None = None
    timeout: float = TIMEOUT_SECONDS

    def call(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> Reply:
        url = self.endpoint.rstrip("/") + path
        if params:
            # The canonical query the signature covers, sent as is (as the official SDK does).
            url += "?" + signing.query_string(params)
        data = None
        headers = {"Accept": "application/json", "User-Agent": "opencts-cli"}
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.credentials is not None:
            # The API signs and verifies the route's path, without the endpoint's base path
            # (an API Gateway stage), as the SDK, which keeps only scheme, host and port.
            headers = signing.sign(
                access_key_id=self.credentials.access_key_id,
                secret=self.credentials.secret,
                method=method,
                host=urllib.parse.urlsplit(self.endpoint).netloc,
                path=path,
                now_ms=now_ms(),
                query=params or {},
                headers=headers,
                body=data or b"",
            )
        # The scheme is checked to be http(s) when the endpoint is chosen (see target()).
        request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                return Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as e:
            error = _api_error(e.code, e.read())
            if e.code == 401 and self.credentials is None:
                error = ApiError(
                    error.status,
                    error.code,
                    f"{error.args[0].split(': ', 1)[-1]} (no access key: set "
                    "OPENCTS_ACCESS_KEY_ID and OPENCTS_SECRET_ACCESS_KEY, or create one with "
                    "`opencts keys create`)",
                )
            raise error from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise Unreachable(
                f"cannot reach OpenCTS at {self.endpoint} ({reason}); is the local stack "
                "running? Start it with `make run`, or pass --endpoint"
            ) from None

    def get_json(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self.call("GET", path, params).json()


def _api_error(status: int, raw: bytes) -> ApiError:
    try:
        body = json.loads(raw)
        return ApiError(status, str(body["error_code"]), str(body["error_msg"]))
    except (ValueError, KeyError, TypeError):
        text = raw.decode("utf-8", "replace").strip()[:200] or "no body"
        return ApiError(status, f"HTTP {status}", text)


@dataclass(frozen=True)
class Target:
    api: Api
    project: str
    domain: str

    def need_project(self) -> str:
        if not self.project:
            raise UsageError(
                "no project: pass --project, set OPENCTS_PROJECT, or start the local stack"
            )
        return self.project


def target(args: argparse.Namespace) -> Target:
    state: dict[str, Any] = {}
    state_path = find_state()
    if state_path is not None:
        try:
            state = read_state(state_path)
        except (OSError, ValueError) as e:
            raise UsageError(f"cannot read {state_path}: {e}") from None
    endpoint = args.endpoint or os.environ.get("OPENCTS_ENDPOINT", "")
    if not endpoint:
        if state.get("status") == STOPPED:
            raise Unreachable(
                f"the local stack recorded in {state_path} has stopped; start it with `make run`"
            )
        endpoint = str(state.get("api_endpoint", ""))
    if not endpoint:
        raise UsageError(
            "no endpoint: pass --endpoint, set OPENCTS_ENDPOINT, or start the local stack "
            "(`make run`) so that .opencts/local.json points to it"
        )
    if urllib.parse.urlsplit(endpoint).scheme not in ("http", "https"):
        raise UsageError(f"the endpoint must be an http(s) URL, not {endpoint!r}")
    project = args.project or os.environ.get("OPENCTS_PROJECT") or state.get("project_id", "")
    domain = getattr(args, "domain", None) or os.environ.get("OPENCTS_DOMAIN")
    api = Api(endpoint, credentials(state))
    return Target(api, str(project), str(domain or state.get("domain_id", "")))


def credentials(state: Mapping[str, Any]) -> Credentials | None:
    """The environment's key, else local.json's; None sends unsigned requests (which the API
    refuses with CTS.0401, and `opencts` then says where credentials come from)."""
    key_id = os.environ.get("OPENCTS_ACCESS_KEY_ID", "")
    secret = os.environ.get("OPENCTS_SECRET_ACCESS_KEY", "")
    if key_id and secret:
        return Credentials(key_id, secret)
    if key_id or secret:
        raise UsageError(
            "set both OPENCTS_ACCESS_KEY_ID and OPENCTS_SECRET_ACCESS_KEY, or neither "
            "(to use local.json's key)"
        )
    stored = state.get("access_key")
    if isinstance(stored, Mapping) and stored.get("id") and stored.get("secret"):
        return Credentials(str(stored["id"]), str(stored["secret"]))
    return None


# -- report ----------------------------------------------------------------------------------------
def read_traces(source: str | None, stdin: TextIO) -> list[Any]:
    """A single trace, a list of traces, or `{"traces": [...]}`, from a file or stdin."""
    if source in (None, "-"):
        if source is None and stdin.isatty():
            raise UsageError("give a FILE, or pipe JSON in: opencts report - < traces.json")
        text, name = stdin.read(), "standard input"
    else:
        try:
            text, name = Path(source).read_text(encoding="utf-8"), str(source)
        except OSError as e:
            raise UsageError(f"cannot read {source}: {e.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise UsageError(f"{name} is not JSON: {e}") from None
    if isinstance(data, dict) and set(data) == {"traces"}:
        data = data["traces"]
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list) and data:
        return data
    raise UsageError(f'{name} holds no traces: expected a trace, a list, or {{"traces": [...]}}')


def chunk_traces(traces: Sequence[Any]) -> Iterator[list[Any]]:
    """Calls of at most 500 traces and 1 MiB each, the service's limits for one report."""
    chunk: list[Any] = []
    size = 0
    for trace in traces:
        trace_bytes = len(json.dumps(trace, ensure_ascii=False).encode("utf-8")) + 1
        if chunk and (len(chunk) >= MAX_TRACES_PER_CALL or size + trace_bytes > MAX_BODY_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(trace)
        size += trace_bytes
    if chunk:
        yield chunk


@dataclass
class ReportTotals:
    stored: int = 0
    duplicate: int = 0
    rejected: int = 0
    failed: int = 0

    @property
    def ok(self) -> bool:
        return self.rejected == 0 and self.failed == 0

    def line(self) -> str:
        return (
            f"stored {self.stored}, duplicate {self.duplicate}, "
            f"rejected {self.rejected}, failed {self.failed}"
        )


def report_traces(t: Target, traces: Sequence[Any], out: TextIO) -> ReportTotals:
    project = t.need_project()
    totals = ReportTotals()
    chunks = list(chunk_traces(traces))
    offset = 0
    for number, chunk in enumerate(chunks, 1):
        head = f"chunk {number}/{len(chunks)} ({len(chunk)} traces)"
        try:
            body = t.api.call("POST", f"/v3/{project}/traces", body={"traces": chunk}).json()
        except ApiError as e:
            if e.status in (401, 403, 404):
                raise  # a refused key or an unknown project fails every chunk alike: say it once
            print(f"{head}: failed: {e}", file=out)
            totals.failed += len(chunk)
            offset += len(chunk)
            continue
        counts = body.get("meta_data", {})
        for name in ("stored", "duplicate", "rejected", "failed"):
            setattr(totals, name, getattr(totals, name) + int(counts.get(name, 0)))
        print(
            f"{head}: stored {counts.get('stored', 0)}, duplicate {counts.get('duplicate', 0)}, "
            f"rejected {counts.get('rejected', 0)}, failed {counts.get('failed', 0)}",
            file=out,
        )
        for result in body.get("results", []):
            if result.get("status") in ("rejected", "failed"):
                index = offset + int(result.get("index", 0))
                print(
                    f"  trace #{index} ({result.get('trace_id') or 'no trace_id'}): "
                    f"{result['status']}: {result.get('error_code')}: {result.get('error_msg')}",
                    file=out,
                )
        offset += len(chunk)
    return totals


def cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    traces = read_traces(args.file, sys.stdin)
    t = target(args)
    totals = report_traces(t, traces, out)
    print(f"reported {len(traces)} traces to {t.project}: {totals.line()}", file=out)
    return EXIT_OK if totals.ok else EXIT_FAILED


# -- traces and export -----------------------------------------------------------------------------
def query_params(args: argparse.Namespace, now: int) -> dict[str, str]:
    params: dict[str, str] = {}
    for _flag, name, _help in FILTERS:
        value = getattr(args, name, None)
        if value:
            params[name] = value
    if args.from_time:
        params["from"] = str(parse_time(args.from_time, now))
    if args.to_time:
        params["to"] = str(parse_time(args.to_time, now))
    return params


COLUMNS = (
    "TIME",
    "TRACE_NAME",
    "RATING",
    "SERVICE",
    "RESOURCE_TYPE",
    "RESOURCE",
    "USER",
    "SOURCE_IP",
)


def trace_row(trace: Mapping[str, Any]) -> tuple[str, ...]:
    user = trace.get("user") or {}
    return (
        iso(trace.get("time")),
        str(trace.get("trace_name", "")),
        str(trace.get("trace_rating", "")),
        str(trace.get("service_type", "")),
        str(trace.get("resource_type", "")),
        str(trace.get("resource_name") or trace.get("resource_id") or ""),
        str(user.get("name") or user.get("id") or ""),
        str(trace.get("source_ip", "")),
    )


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; long cells are cut so one trace stays on one line."""

    def cell(text: str) -> str:
        text = text.replace("\n", " ") or "-"
        return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 3] + "..."

    cells = [[cell(c) for c in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def format_traces(traces: Sequence[Mapping[str, Any]]) -> str:
    return format_table(COLUMNS, [trace_row(t) for t in traces])


def cmd_traces(args: argparse.Namespace, out: TextIO) -> int:
    t = target(args)
    project = t.need_project()
    now = now_ms()
    params = query_params(args, now)
    limit = (
        args.limit if args.limit is not None else (ALL_PAGE_LIMIT if args.all else DEFAULT_LIMIT)
    )
    params["limit"] = str(limit)
    if args.all:
        # Pin the window: every page then asks for the same traces, however long paging takes.
        params.setdefault("to", str(now))
        params.setdefault("from", str(int(params["to"]) - 3_600_000))
    if args.next:
        params["next"] = args.next
    path = f"/v3/{project}/traces"
    body = t.api.get_json(path, params)
    if args.all:
        traces = list(body.get("traces", []))
        marker = (body.get("meta_data") or {}).get("marker")
        while marker:
            page = t.api.get_json(path, {**params, "next": marker})
            traces.extend(page.get("traces", []))
            marker = (page.get("meta_data") or {}).get("marker")
        body = {"traces": traces, "meta_data": {"count": len(traces), "marker": None}}
    if args.output == "json":
        print(json.dumps(body, indent=2, ensure_ascii=False), file=out)
        return EXIT_OK
    traces = body.get("traces", [])
    if traces:
        print(format_traces(traces), file=out)
    print(f"({len(traces)} trace{'' if len(traces) == 1 else 's'})", file=out)
    marker = (body.get("meta_data") or {}).get("marker")
    if marker:
        print(f"next marker: {marker}", file=out)
        print("  (more: repeat the command with --next <marker>, or use --all)", file=out)
    return EXIT_OK


def cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    t = target(args)
    project = t.need_project()
    # urllib follows the 303 to the presigned URL an export too large to answer inline gets.
    reply = t.api.call("GET", f"/v3/{project}/traces/export", query_params(args, now_ms()))
    if args.output_file in (None, "-"):
        out.write(reply.body.decode("utf-8"))
        return EXIT_OK
    Path(args.output_file).write_bytes(reply.body)
    rows = max(0, reply.body.count(b"\n") - 1)
    print(f"wrote {args.output_file} (about {rows} traces)", file=sys.stderr)
    return EXIT_OK


# -- catalog ---------------------------------------------------------------------------------------
def cmd_resources(args: argparse.Namespace, out: TextIO) -> int:
    t = target(args)
    if not t.domain:
        raise UsageError("no domain: pass --domain, set OPENCTS_DOMAIN, or start the local stack")
    body = t.api.get_json(f"/v3/{t.domain}/resources")
    rows = [(r["service_type"], ", ".join(r.get("resource", []))) for r in body["resources"]]
    return _print(args, out, body, ("SERVICE", "RESOURCE_TYPES"), rows)


def cmd_users(args: argparse.Namespace, out: TextIO) -> int:
    t = target(args)
    body = t.api.get_json(f"/v3/{t.need_project()}/user-resources")
    rows = [(u.get("name", ""), u.get("id", "")) for u in body["users"]]
    return _print(args, out, body, ("USER", "ID"), rows)


def cmd_operations(args: argparse.Namespace, out: TextIO) -> int:
    t = target(args)
    params = {}
    if args.service_type:
        params["service_type"] = args.service_type
    if args.resource_type:
        params["resource_type"] = args.resource_type
    body = t.api.get_json(f"/v3/{t.need_project()}/operations", params)
    rows = [
        (o["service_type"], o["resource_type"], ", ".join(o.get("operation_list", [])))
        for o in body["operations"]
    ]
    return _print(args, out, body, ("SERVICE", "RESOURCE_TYPE", "OPERATIONS"), rows)


def _print(
    args: argparse.Namespace,
    out: TextIO,
    body: Any,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
) -> int:
    if args.output == "json":
        print(json.dumps(body, indent=2, ensure_ascii=False), file=out)
    elif rows:
        print(format_table(header, rows), file=out)
    else:
        print("(none yet: report some traces, e.g. with `opencts demo`)", file=out)
    return EXIT_OK


# -- demo ------------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    t = target(args)
    traces = demo_traces(now_ms(), t.domain or "123456789012")
    totals = report_traces(t, traces, out)
    print(f"\nreported {len(traces)} demo traces to {t.project}: {totals.line()}", file=out)
    print(format_traces(sorted(traces, key=lambda tr: -int(tr["time"]))), file=out)
    ecs_alice = sum(
        1 for tr in traces if tr["service_type"] == "ECS" and tr["user"].get("name") == "alice"
    )
    warnings = sum(1 for tr in traces if tr["trace_rating"] == "warning")
    print("\nTry:", file=out)
    print(f"  opencts traces --service-type ECS --user alice    # {ecs_alice} traces", file=out)
    print(f"  opencts traces --trace-rating warning --from 1h   # {warnings} traces", file=out)
    return EXIT_OK if totals.ok else EXIT_FAILED


# -- archive -------------------------------------------------------------------------------------
def cmd_archive(args: argparse.Namespace, out: TextIO) -> int:
    """Operator command (AWS credentials, like `admin`): see chalicelib/archive.py."""
    now = now_ms()
    if not args.from_time:
        raise UsageError("give --from (and --to, default now): the window to search")
    window = (parse_time(args.from_time, now), parse_time(args.to_time or str(now), now))
    project = getattr(args, "project", None) or os.environ.get("OPENCTS_PROJECT", "")
    state_path = find_state()
    if not project and state_path is not None:
        project = str(read_state(state_path).get("project_id", ""))
    if not project:
        raise UsageError("no project: pass --project, set OPENCTS_PROJECT, or start the stack")
    params = {name: str(getattr(args, name, None) or "") for _f, name, _h in FILTERS}
    try:
        result = archive.search_tracker_files(args, project, params, window, now)
    except archive.ArchiveError as e:
        raise CliError(str(e)) from None
    return archive.print_result(result, args.output, out, format_traces)


# -- arguments -------------------------------------------------------------------------------------
def _add_filters(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters (ANDed; default window: the last hour)")
    for flag, name, text in FILTERS:
        kwargs: dict[str, Any] = {"dest": name, "help": text}
        if name == "trace_type":
            kwargs["choices"] = ("system", "data")
        if name == "trace_rating":
            kwargs["choices"] = ("normal", "warning", "incident")
        group.add_argument(flag, **kwargs)
    when = "epoch ms, ISO 8601 (2026-11-20T10:00:00Z) or a time ago (30m, 2h, 7d)"
    group.add_argument("--from", dest="from_time", metavar="TIME", help=f"start: {when}")
    group.add_argument("--to", dest="to_time", metavar="TIME", help=f"end: {when}")


def _output(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", choices=("table", "json"), default="table")


def _global_options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--endpoint", default=default, help="API URL (default: OPENCTS_ENDPOINT, local.json)"
    )
    parser.add_argument(
        "--project", default=default, help="project id (default: OPENCTS_PROJECT, local.json)"
    )


def build_parser() -> argparse.ArgumentParser:
    # The global options are accepted before or after the command: `opencts traces --project x`.
    # After it, they default to SUPPRESS so that they do not hide a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, None)
    below = argparse.ArgumentParser(add_help=False)
    _global_options(below, argparse.SUPPRESS)

    parser = argparse.ArgumentParser(
        prog="opencts",
        parents=[common],
        description="Report and query traces on OpenCTS (the local stack by default).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    report = commands.add_parser("report", parents=[below], help="report traces from JSON")
    report.add_argument(
        "file",
        nargs="?",
        metavar="FILE|-",
        help='a trace, a list of traces or {"traces": [...]}; default: standard input',
    )
    report.set_defaults(run=cmd_report)

    traces = commands.add_parser("traces", parents=[below], help="list traces (ListTraces)")
    _add_filters(traces)
    traces.add_argument("--limit", type=int, help="traces per page (1-200, default 10)")
    traces.add_argument("--next", metavar="MARKER", help="the next page, from a previous listing")
    traces.add_argument("--all", action="store_true", help="follow the markers to the last page")
    _output(traces)
    traces.set_defaults(run=cmd_traces)

    export = commands.add_parser("export", parents=[below], help="export traces as CSV")
    _add_filters(export)
    export.add_argument("-o", "--output-file", metavar="FILE", help="default: standard output")
    export.set_defaults(run=cmd_export)

    demo = commands.add_parser("demo", parents=[below], help="report an hour of sample traces")
    demo.set_defaults(run=cmd_demo)

    resources = commands.add_parser(
        "resources", parents=[below], help="service and resource types seen (ListTraceResources)"
    )
    resources.add_argument("--domain", help="domain (account) id (default: local.json)")
    _output(resources)
    resources.set_defaults(run=cmd_resources)

    users = commands.add_parser("users", parents=[below], help="operators of the last 30 days")
    _output(users)
    users.set_defaults(run=cmd_users)

    operations = commands.add_parser("operations", parents=[below], help="operations seen")
    operations.add_argument("--service-type")
    operations.add_argument("--resource-type")
    _output(operations)
    operations.set_defaults(run=cmd_operations)

    admin.add_parser(commands)
    keys_cli.add_parser(commands)
    notifications_cli.add_parser(commands, below)
    validate_cli.add_parser(commands)
    archived = commands.add_parser(
        "archive", parents=[below], help="find traces of any age in a tracker's trace files"
    )
    archive.add_arguments(archived)
    _add_filters(archived)
    _output(archived)
    archived.set_defaults(run=cmd_archive)
    bootstrap_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "limit", None) is not None and not 1 <= args.limit <= 200:
        parser.error("--limit must be between 1 and 200")
    try:
        code: int = args.run(args, sys.stdout)
    except UsageError as e:
        print(f"opencts: error: {e}", file=sys.stderr)
        return e.exit_code
    except CliError as e:
        print(e, file=sys.stderr)
        return e.exit_code
    return code


if __name__ == "__main__":
    raise SystemExit(main())
