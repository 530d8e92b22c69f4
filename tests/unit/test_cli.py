"""The `opencts` command line, against the app served by Chalice's local server on an ephemeral
port (moto in-process as AWS), so every command goes over real HTTP. A stdlib stub server stands
in only where the real app cannot: a proxy's non-JSON error.
"""

from __future__ import annotations

import dataclasses
import datetime
import http.server
import io
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from chalicelib import cli
from chalicelib.access_keys import KeyUser
from chalicelib.config import Settings
from chalicelib.local.demo import demo_traces
from chalicelib.local.state import write_state
from chalicelib.permissions import FULL_ACCESS, READ_ONLY_ACCESS
from chalicelib.wiring import Services, build
from tests.conftest import DOMAIN, PROJECT, trace

NOW = 1_795_176_000_000  # 2026-11-20T12:00:00Z


def recent(**overrides: Any) -> dict[str, Any]:
    """A valid trace from a minute ago by the real clock, which the server and the CLI use."""
    return trace(**{"time": cli.now_ms() - 60_000, **overrides})


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # No local.json and no OPENCTS_* from the developer's shell may leak into a test.
    for name in (
        "OPENCTS_ENDPOINT",
        "OPENCTS_PROJECT",
        "OPENCTS_DOMAIN",
        "OPENCTS_ACCESS_KEY_ID",
        "OPENCTS_SECRET_ACCESS_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def services(
    created: dict[str, str], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    svc = build(dataclasses.replace(settings, ingest_dlq_url=created["ingest_dlq_url"]))
    svc.projects.register(PROJECT, DOMAIN)
    key = svc.keys.create(
        user=KeyUser("u-cli", "cli"),
        domain_id=DOMAIN,
        project_ids=[PROJECT, "nobody"],  # "nobody": reachable, but not a known project
        policy=FULL_ACCESS,
    )
    # The CLI signs with the environment's key (a test's local.json carries none).
    monkeypatch.setenv("OPENCTS_ACCESS_KEY_ID", key.key.access_key_id)
    monkeypatch.setenv("OPENCTS_SECRET_ACCESS_KEY", key.secret)
    app_module.use_services(svc)
    yield svc
    app_module.use_services(None)


@pytest.fixture
def run(endpoint: str, services: Services, capsys: pytest.CaptureFixture[str]) -> Any:
    """Runs the CLI against the served app; returns (exit code, stdout, stderr)."""

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli.main(["--endpoint", endpoint, "--project", PROJECT, *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def report_file(tmp_path: Path, data: Any) -> str:
    path = tmp_path / "traces.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


# -- time ------------------------------------------------------------------------------------------
class TestParseTime:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1795176000000", NOW),
            ("2026-11-20T12:00:00Z", NOW),
            ("2026-11-20T12:00:00", NOW),
            ("2026-11-20T14:00:00+02:00", NOW),
            ("2026-11-20T12:00:00.250Z", NOW + 250),
            ("30m", NOW - 30 * 60_000),
            ("2h", NOW - 2 * 3_600_000),
            ("7d", NOW - 7 * 86_400_000),
            ("90s", NOW - 90_000),
        ],
    )
    def test_accepted_forms(self, text: str, expected: int) -> None:
        assert cli.parse_time(text, NOW) == expected

    @pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "-5m", "5 parsecs", ""])
    def test_unreadable_times_are_usage_errors(self, text: str) -> None:
        with pytest.raises(cli.UsageError):
            cli.parse_time(text, NOW)


# -- arguments -------------------------------------------------------------------------------------
class TestArguments:
    def test_global_options_go_before_or_after_the_command(self) -> None:
        parser = cli.build_parser()
        before = parser.parse_args(["--endpoint", "http://a", "--project", "p", "traces"])
        after = parser.parse_args(["traces", "--endpoint", "http://a", "--project", "p"])
        assert (
            (before.endpoint, before.project)
            == (after.endpoint, after.project)
            == (
                "http://a",
                "p",
            )
        )

    def test_every_filter_becomes_its_list_traces_parameter(self) -> None:
        # Given every filter flag
        args = cli.build_parser().parse_args(
            [
                "traces",
                "--trace-type", "data",
                "--tracker-name", "bucket-trail",
                "--service-type", "OBS",
                "--user", "alice",
                "--resource-id", "r-1",
                "--resource-name", "logs",
                "--resource-type", "bucket",
                "--trace-id", "t-1",
                "--trace-name", "putObject",
                "--trace-rating", "warning",
                "--access-key-id", "AK1",
                "--enterprise-project-id", "0",
                "--from", "2h",
                "--to", "2026-11-20T12:00:00Z",
            ]
        )  # fmt: skip

        # When they are turned into query parameters
        params = cli.query_params(args, NOW)

        # Then each has the API's own name
        assert params == {
            "trace_type": "data",
            "tracker_name": "bucket-trail",
            "service_type": "OBS",
            "user": "alice",
            "resource_id": "r-1",
            "resource_name": "logs",
            "resource_type": "bucket",
            "trace_id": "t-1",
            "trace_name": "putObject",
            "trace_rating": "warning",
            "access_key_id": "AK1",
            "enterprise_project_id": "0",
            "from": str(NOW - 2 * 3_600_000),
            "to": str(NOW),
        }

    @pytest.mark.parametrize(
        "argv",
        [
            [],
            ["traces", "--limit", "0"],
            ["traces", "--limit", "201"],
            ["traces", "--trace-rating", "fatal"],
            ["traces", "--output", "yaml"],
            ["nonsense"],
        ],
    )
    def test_usage_errors_exit_2(self, argv: list[str]) -> None:
        with pytest.raises(SystemExit) as exited:
            cli.main(argv)
        assert exited.value.code == cli.EXIT_USAGE

    def test_a_bad_time_exits_2(self, endpoint: str, capsys: pytest.CaptureFixture[str]) -> None:
        code = cli.main(["--endpoint", endpoint, "--project", PROJECT, "traces", "--from", "soon"])
        assert code == cli.EXIT_USAGE
        assert "cannot read time 'soon'" in capsys.readouterr().err

    def test_without_an_endpoint_it_says_how_to_get_one(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert cli.main(["traces"]) == cli.EXIT_USAGE
        assert "make run" in capsys.readouterr().err


# -- table -----------------------------------------------------------------------------------------
class TestTable:
    def test_rows_show_the_columns_a_reader_scans(self) -> None:
        # Given a trace with a resource id but no name, and a system action without a user
        traces = [
            {
                "time": NOW,
                "trace_name": "createServer",
                "trace_rating": "normal",
                "service_type": "ECS",
                "resource_type": "ecs",
                "resource_id": "srv-1",
                "user": {"id": "u-1", "name": "alice"},
                "source_ip": "192.0.2.10",
            },
            {
                "time": NOW - 1000,
                "trace_name": "createSnapshot",
                "trace_rating": "warning",
                "service_type": "EVS",
                "resource_type": "snapshot",
                "resource_name": "x" * 60,
                "user": {},
                "source_ip": "",
            },
        ]

        # When they are formatted
        lines = cli.format_traces(traces).splitlines()

        # Then the header names the columns, times are ISO, and gaps and long cells are visible
        assert lines[0].split() == list(cli.COLUMNS)
        assert lines[1].split() == [
            "2026-11-20T12:00:00Z",
            "createServer",
            "normal",
            "ECS",
            "ecs",
            "srv-1",
            "alice",
            "192.0.2.10",
        ]
        assert lines[2].split() == [
            "2026-11-20T11:59:59Z",
            "createSnapshot",
            "warning",
            "EVS",
            "snapshot",
            "x" * 37 + "...",
            "-",
            "-",
        ]
        # columns line up
        assert lines[1].index("createServer") == lines[2].index("createSnapshot")


# -- report ----------------------------------------------------------------------------------------
class TestReport:
    def test_1200_traces_go_in_chunks_of_500_500_200(self) -> None:
        chunks = list(cli.chunk_traces([{"n": i} for i in range(1200)]))
        assert [len(c) for c in chunks] == [500, 500, 200]
        assert [t["n"] for c in chunks for t in c] == list(range(1200))

    def test_chunks_also_stay_under_one_mebibyte(self) -> None:
        big = [{"request": "x" * 300_000} for _ in range(7)]
        chunks = list(cli.chunk_traces(big))
        assert [len(c) for c in chunks] == [3, 3, 1]
        assert all(len(json.dumps({"traces": c})) <= 1024 * 1024 for c in chunks)

    def test_reporting_1200_traces(self, run: Any, tmp_path: Path, services: Services) -> None:
        # Given 1,200 traces in a {"traces": [...]} file
        traces = [recent(trace_id=f"bulk-{i:04d}") for i in range(1200)]
        path = report_file(tmp_path, {"traces": traces})

        # When they are reported
        code, out, _ = run("report", path)

        # Then three calls stored them all
        assert code == cli.EXIT_OK
        assert "chunk 1/3 (500 traces): stored 500" in out
        assert "chunk 2/3 (500 traces): stored 500" in out
        assert "chunk 3/3 (200 traces): stored 200" in out
        assert "stored 1200, duplicate 0, rejected 0, failed 0" in out
        found = services.api.list_traces(PROJECT, {"trace_id": ["bulk-1199"]})["traces"]
        assert len(found) == 1

    def test_a_single_trace_object_and_duplicates(self, run: Any, tmp_path: Path) -> None:
        path = report_file(tmp_path, recent(trace_id="once"))
        assert run("report", path)[0] == cli.EXIT_OK
        code, out, _ = run("report", path)
        assert code == cli.EXIT_OK
        assert "stored 0, duplicate 1" in out

    def test_rejected_traces_are_listed_and_exit_1(
        self, run: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Given a list on standard input with one invalid trace among valid ones
        bad = recent(trace_id="bad-1", trace_rating="fatal")
        traces = [recent(trace_id="ok-1"), bad, recent(trace_id="ok-2")]
        monkeypatch.setattr("sys.stdin", _stdin(json.dumps(traces)))

        # When they are reported
        code, out, _ = run("report", "-")

        # Then the valid ones are stored, the invalid one is named with its error, and it fails
        assert code == cli.EXIT_FAILED
        assert "stored 2, duplicate 0, rejected 1, failed 0" in out
        assert "trace #1 (bad-1): rejected: CTS.0005: Invalid trace field 'trace_rating'" in out

    @pytest.mark.parametrize(
        ("content", "why"),
        [("{not json", "is not JSON"), ("[]", "holds no traces"), ("3", "holds no traces")],
    )
    def test_unreadable_input_exits_2(
        self, run: Any, tmp_path: Path, content: str, why: str
    ) -> None:
        path = tmp_path / "in.json"
        path.write_text(content, encoding="utf-8")
        code, _, err = run("report", str(path))
        assert code == cli.EXIT_USAGE
        assert why in err

    def test_unknown_project_prints_the_cts_error(
        self, endpoint: str, services: Services, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = report_file(tmp_path, [recent()])
        code = cli.main(["--endpoint", endpoint, "--project", "nobody", "report", path])
        assert code == cli.EXIT_FAILED
        assert capsys.readouterr().err.strip() == (
            "CTS.0006: Project 'nobody' is not known to OpenCTS"
        )


def _stdin(text: str) -> Any:
    return io.StringIO(text)


# -- traces ----------------------------------------------------------------------------------------
@pytest.fixture
def seeded(services: Services) -> list[dict[str, Any]]:
    now = cli.now_ms()
    traces = [
        recent(trace_id="a-ecs-1", time=now - 10_000),
        recent(trace_id="a-ecs-2", time=now - 20_000, trace_name="deleteServer"),
        recent(trace_id="b-ecs-1", time=now - 30_000, user={"id": "u-bob", "name": "bob"}),
        recent(trace_id="a-evs-1", time=now - 40_000, service_type="EVS", resource_type="volume"),
        recent(trace_id="a-old", time=now - 3 * 3_600_000),
    ]
    results = services.api.ingestor.report(PROJECT, traces)
    assert {r.status for r in results} == {"stored"}
    return traces


class TestTraces:
    def test_filters_and_json_output(self, run: Any, seeded: Any) -> None:
        code, out, _ = run("traces", "--service-type", "ECS", "--user", "alice", "--output", "json")
        assert code == cli.EXIT_OK
        body = json.loads(out)
        assert [t["trace_id"] for t in body["traces"]] == ["a-ecs-1", "a-ecs-2"]
        assert body["meta_data"] == {"count": 2, "marker": None}

    def test_table_output_prints_the_next_marker(self, run: Any, seeded: Any) -> None:
        code, out, _ = run("traces", "--limit", "2")
        assert code == cli.EXIT_OK
        lines = out.splitlines()
        assert lines[0].split()[:2] == ["TIME", "TRACE_NAME"]
        assert "(2 traces)" in out
        (marker_line,) = [line for line in lines if line.startswith("next marker: ")]

        # And the marker gives the next page
        marker = marker_line.removeprefix("next marker: ")
        code, out, _ = run("traces", "--limit", "2", "--next", marker, "--output", "json")
        assert [t["trace_id"] for t in json.loads(out)["traces"]] == ["b-ecs-1", "a-evs-1"]

    def test_all_follows_markers_to_the_end(self, run: Any, seeded: Any) -> None:
        code, out, _ = run("traces", "--all", "--limit", "1", "--from", "4h", "--output", "json")
        assert code == cli.EXIT_OK
        ids = [t["trace_id"] for t in json.loads(out)["traces"]]
        assert ids == ["a-ecs-1", "a-ecs-2", "b-ecs-1", "a-evs-1", "a-old"]

    def test_time_window(self, run: Any, seeded: Any) -> None:
        code, out, _ = run("traces", "--from", "4h", "--to", "2h", "--output", "json")
        assert code == cli.EXIT_OK
        assert [t["trace_id"] for t in json.loads(out)["traces"]] == ["a-old"]

    def test_export_writes_csv(self, run: Any, seeded: Any, tmp_path: Path) -> None:
        target = tmp_path / "out.csv"
        code, _, _ = run("export", "--service-type", "ECS", "-o", str(target))
        assert code == cli.EXIT_OK
        rows = target.read_text(encoding="utf-8").splitlines()
        assert rows[0].startswith("time,trace_name,")
        assert len(rows) == 4

    def test_export_to_stdout(self, run: Any, seeded: Any) -> None:
        code, out, _ = run("export", "--trace-id", "a-evs-1")
        assert code == cli.EXIT_OK
        assert len(out.splitlines()) == 2
        assert "a-evs-1" in out


# -- catalog ---------------------------------------------------------------------------------------
class TestCatalog:
    def test_resources_users_operations(self, run: Any, seeded: Any) -> None:
        code, out, _ = run("resources", "--domain", DOMAIN)
        assert code == cli.EXIT_OK
        assert out.splitlines()[1:] == ["ECS      ecs", "EVS      volume"]

        code, out, _ = run("users", "--output", "json")
        assert sorted(u["name"] for u in json.loads(out)["users"]) == ["alice", "bob"]

        code, out, _ = run("operations", "--service-type", "ECS")
        assert out.splitlines()[1].split() == ["ECS", "ecs", "createServer,", "deleteServer"]


# -- demo ------------------------------------------------------------------------------------------
class TestDemo:
    def test_demo_reports_a_realistic_hour(self, run: Any) -> None:
        # When the demo is reported
        code, out, _ = run("demo")

        # Then every trace is stored and the advertised query finds what the demo says
        assert code == cli.EXIT_OK
        assert "stored 25, duplicate 0, rejected 0, failed 0" in out
        assert "opencts traces --service-type ECS --user alice    # 4 traces" in out
        code, out, _ = run("traces", "--service-type", "ECS", "--user", "alice", "--output", "json")
        traces = json.loads(out)["traces"]
        assert len(traces) == 4
        assert {(t["service_type"], t["user"]["name"]) for t in traces} == {("ECS", "alice")}

    def test_demo_content(self) -> None:
        traces = demo_traces(NOW, DOMAIN)
        assert len(traces) >= 20
        assert all(NOW - 3_600_000 < t["time"] <= NOW for t in traces)
        assert {t["service_type"] for t in traces} >= {"ECS", "EVS", "VPC", "IAM", "CTS", "OBS"}
        users = {t["user"].get("name") for t in traces}
        assert users >= {"alice", "bob", "ops-automation"}
        assert {t["trace_rating"] for t in traces} == {"normal", "warning", "incident"}
        assert any(t["trace_rating"] == "warning" and t["code"] == "400" for t in traces)
        system = [t for t in traces if t["trace_type"] == "SystemAction"]
        assert system
        assert all(t["user"] == {} and t["source_ip"] == "" for t in system)
        assert any(t["service_type"] == "IAM" and t["trace_name"] == "login" for t in traces)


# -- finding the endpoint, and the ways it can fail ------------------------------------------------
class TestEndpoint:
    def test_found_through_the_nearest_local_json(
        self,
        endpoint: str,
        services: Services,
        isolated: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        # Given a running stack recorded two directories up
        state = {"status": "running", "api_endpoint": endpoint, "project_id": PROJECT}
        write_state(isolated / ".opencts", {**state, "domain_id": DOMAIN})
        deeper = isolated / "a" / "b"
        deeper.mkdir(parents=True)
        monkeypatch.chdir(deeper)

        # When the CLI runs without --endpoint or --project
        code = cli.main(["users", "--output", "json"])

        # Then it used the recorded endpoint and project
        assert code == cli.EXIT_OK
        assert json.loads(capsys.readouterr().out) == {"users": []}

    def test_the_environment_beats_local_json(
        self,
        endpoint: str,
        services: Services,
        isolated: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        write_state(
            isolated / ".opencts", {"api_endpoint": "http://127.0.0.1:9", "project_id": "x"}
        )
        monkeypatch.setenv("OPENCTS_ENDPOINT", endpoint)
        monkeypatch.setenv("OPENCTS_PROJECT", PROJECT)
        assert cli.main(["users"]) == cli.EXIT_OK

    def test_a_stopped_stack_exits_3(
        self, isolated: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        write_state(isolated / ".opencts", {"status": "stopped", "api_endpoint": "http://x"})
        assert cli.main(["traces"]) == cli.EXIT_UNREACHABLE
        assert "has stopped" in capsys.readouterr().err

    def test_an_unreachable_endpoint_exits_3(self, capsys: pytest.CaptureFixture[str]) -> None:
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        code = cli.main(["--endpoint", f"http://127.0.0.1:{port}", "--project", "p", "traces"])
        assert code == cli.EXIT_UNREACHABLE
        assert "cannot reach OpenCTS" in capsys.readouterr().err

    def test_a_non_json_error_exits_1_with_the_status(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # Given a proxy in front of the API answering 502 with an HTML page
        class Proxy(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"<html>Bad Gateway</html>"
                self.send_response(502)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Proxy)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}"
            code = cli.main(["--endpoint", url, "--project", "p", "traces"])
        finally:
            server.shutdown()
            server.server_close()

        # Then the CLI fails with the status and the start of the body
        assert code == cli.EXIT_FAILED
        assert capsys.readouterr().err.strip() == "HTTP 502: <html>Bad Gateway</html>"

    def test_requests_are_signed_and_a_redirect_is_followed_unsigned(self) -> None:
        # Given an endpoint that redirects (as a large export does, to a presigned S3 URL)
        seen: list[dict[str, str]] = []

        class Redirecting(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append({k.lower(): v for k, v in self.headers.items()})
                if self.path.startswith("/v3/"):
                    self.send_response(303)
                    self.send_header("Location", "/bucket/export.csv?X-Amz-Signature=s")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "4")
                self.end_headers()
                self.wfile.write(b"a,b\n")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Redirecting)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}"
            api = cli.Api(url, cli.Credentials("AK" * 10, "S" * 40))
            reply = api.call("GET", "/v3/p/traces/export", {"service_type": "ECS"})
        finally:
            server.shutdown()
            server.server_close()

        # Then the API call is signed, and the redirected one carries no OpenCTS credential
        assert reply.body == b"a,b\n"
        first, second = seen
        assert first["authorization"].startswith("SDK-HMAC-SHA256 Access=AKAKAKAKAKAKAKAKAKAK")
        assert first["host"] == url.removeprefix("http://")
        assert "x-sdk-date" in first
        assert "authorization" not in second
        assert not any(name.startswith("x-sdk-") for name in second)

    def test_half_a_key_in_the_environment_is_a_usage_error(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("OPENCTS_ACCESS_KEY_ID", "A" * 20)
        assert cli.main(["--endpoint", "http://127.0.0.1:9", "--project", "p", "traces"]) == 2
        assert "OPENCTS_SECRET_ACCESS_KEY" in capsys.readouterr().err

    def test_only_http_endpoints(self, capsys: pytest.CaptureFixture[str]) -> None:
        code = cli.main(["--endpoint", "file:///etc/passwd", "--project", "p", "traces"])
        assert code == cli.EXIT_USAGE


class TestSigning:
    def test_without_a_key_the_refusal_says_where_keys_come_from(
        self, run: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("OPENCTS_ACCESS_KEY_ID")
        monkeypatch.delenv("OPENCTS_SECRET_ACCESS_KEY")
        code, _out, err = run("traces")
        assert code == cli.EXIT_FAILED
        assert err.startswith("CTS.0401: Authentication failed")
        assert "OPENCTS_ACCESS_KEY_ID" in err
        assert "opencts keys create" in err

    def test_a_read_only_key_cannot_report(
        self, run: Any, services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        key = services.keys.create(
            user=KeyUser("u-ro", "ro"),
            domain_id=DOMAIN,
            project_ids=[PROJECT],
            policy=READ_ONLY_ACCESS,
        )
        monkeypatch.setenv("OPENCTS_ACCESS_KEY_ID", key.key.access_key_id)
        monkeypatch.setenv("OPENCTS_SECRET_ACCESS_KEY", key.secret)
        code, _out, err = run("report", report_file(tmp_path, [recent()]))
        assert code == cli.EXIT_FAILED
        assert err.startswith("CTS.0403")
        assert run("traces")[0] == cli.EXIT_OK


def test_iso_formatting() -> None:
    assert cli.iso(NOW) == "2026-11-20T12:00:00Z"
    assert cli.iso(None) == "-"
    assert datetime.datetime.fromisoformat(cli.iso(NOW)).timestamp() * 1000 == NOW
