"""The whole of OpenCTS on one laptop, in one process: `python -m chalicelib.local`.

Order matters, and is the reason this module exists:
1. moto starts as the embedded AWS, and the process environment is pointed at it (fake
   credentials, region, `OPENCTS_*`) BEFORE `app` is imported, because app.py and Powertools read
   settings at import and `app.services()` builds its clients from them on first use.
2. Every table, queue, bucket and key is created (`resources.ensure_all`), the demo project is
   registered and a demo access key (`CTS FullAccess`) is made for it, so the first request
   already finds them; the key goes into local.json, where the `opencts` CLI finds it.
3. The REST API runs on Chalice's own local server (what `chalice local` runs), the driver runs
   the queue, stream and schedule functions, and `<state-dir>/local.json` tells the CLI where.
Everything runs in threads of this process, so Ctrl-C or SIGTERM stops it all and frees the ports:
there is no child process to orphan.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

from chalice.app import Chalice
from chalice.config import Config
from chalice.deploy.validate import validate_routes
from chalice.local import (
    ChaliceRequestHandler,
    LocalChalice,
    LocalDevServer,
    RouteMatcher,
    create_local_server,
)
from moto.server import ThreadedMotoServer

from chalicelib.access_keys import KeyUser
from chalicelib.aws import client
from chalicelib.config import Settings
from chalicelib.errors import method_not_allowed
from chalicelib.local.driver import FAST_PERIOD_SECONDS, LocalDriver
from chalicelib.local.notifications import ensure_local_subscriber, login_audit_environment
from chalicelib.local.state import RUNNING, STATE_DIR, STATE_FILE, STOPPED, write_state
from chalicelib.permissions import FULL_ACCESS
from chalicelib.resources import ensure_all, ensure_bucket
from chalicelib.wiring import Services, build

logger = logging.getLogger("opencts.local")

PROJECT_DIR = Path(__file__).resolve().parents[2]
STAGE = "local"
REGION = "us-east-1"
DEMO_PROJECT = "opencts-demo"
DEMO_DOMAIN = "123456789012"  # moto's account id: the demo domain owns the embedded AWS
EXPORT_BUCKET = "opencts-local-exports"
# Where the demo project's system tracker transfers its trace files (and digests: validation
# is on), and the digest "hour" of --fast mode, so that `opencts validate` has a chain to check
# within a minute.
TRACE_BUCKET = "opencts-local-trace-files"
TRACE_PREFIX = "opencts"
FAST_DIGEST_PERIOD_SECONDS = 10
DEMO_USER_ID = "opencts-demo-user"
DEMO_USER_NAME = "demo"
START_TIMEOUT_SECONDS = 15.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class StackError(Exception):
    """A reason the stack cannot start, worded for the person who ran it."""


@dataclass(frozen=True)
class StackOptions:
    host: str = "127.0.0.1"
    api_port: int = 8000
    aws_port: int = 5000
    state_dir: Path = Path(STATE_DIR)
    fast: bool = False
    fast_period_seconds: float = FAST_PERIOD_SECONDS
    region: str = REGION
    project_id: str = DEMO_PROJECT
    domain_id: str = DEMO_DOMAIN
    project_dir: Path = PROJECT_DIR
    # Builds the notification matcher (wiring.MatcherFactory); None: wiring's default.
    matcher_factory: Any = None


def check_port_free(host: str, port: int, flag: str) -> None:
    """Fails early, with the flag to change, instead of a half-started stack (port 0 = any)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # The servers set SO_REUSEADDR too, so a port in TIME_WAIT is not reported as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise StackError(
                f"port {port} on {host} is already in use ({e.strerror}); is another stack "
                f"running? Stop it, or choose another port with {flag}"
            ) from None


def local_environment(options: StackOptions, aws_endpoint: str) -> dict[str, str]:
    """What the app's functions see in their environment on the local stack."""
    return {
        # Any credentials satisfy moto; real ones must never be picked up from the shell.
        "AWS_ACCESS_KEY_ID": "opencts-local",
        "AWS_SECRET_ACCESS_KEY": "opencts-local",
        "AWS_REGION": options.region,
        "AWS_DEFAULT_REGION": options.region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # A boto3 client made without an endpoint still reaches moto, never a real account.
        "AWS_ENDPOINT_URL": aws_endpoint,
        # moto's DynamoDB Streams and current botocore disagree on account-id endpoints.
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "OPENCTS_STAGE": STAGE,
        "OPENCTS_AWS_ENDPOINT": aws_endpoint,
        "OPENCTS_DOMAIN_ID": options.domain_id,
        "OPENCTS_EXPORT_BUCKET": EXPORT_BUCKET,
        "OPENCTS_CLOUDTRAIL_PROJECT_ID": options.project_id,
        "OPENCTS_DIGEST_PERIOD_S": str(FAST_DIGEST_PERIOD_SECONDS if options.fast else 3600),
        # Local traffic is light: look for new traces 1 s after they are recorded.
        "OPENCTS_TRANSFER_SETTLE_MS": "1000",
        "POWERTOOLS_SERVICE_NAME": "opencts",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"),
        # No CloudWatch reads the metrics here: their EMF lines would bury the stack's output
        # (POWERTOOLS_METRICS_DISABLED=false in the shell shows them).
        "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
    }


def chalice_config(project_dir: Path, app_obj: Chalice) -> Config:
    """The Config `chalice local --stage local` would build (cli/factory.py create_config_obj)."""
    config_file = project_dir / ".chalice" / "config.json"
    from_disk: dict[str, Any] = json.loads(config_file.read_text(encoding="utf-8"))
    return Config(
        chalice_stage=STAGE,
        user_provided_params={"chalice_app": app_obj},
        config_from_disk=from_disk,
        default_params={
            "project_dir": str(project_dir),
            "api_gateway_stage": "api",
            "api_gateway_endpoint_type": "EDGE",
            "autogen_policy": False,
        },
    )


MAX_REFUSED_BODY = 16 * 1024 * 1024


class _RequestHandler(ChaliceRequestHandler):
    """Chalice's handler, plus a CTS 405 for the methods it does not implement (TRACE, CONNECT,
    anything else): the standard library would answer those with an HTML 501."""

    def __init__(
        self,
        request: bytes,
        client_address: tuple[str, int],
        server: Any,
        app_object: Chalice,
        config: Config,
    ) -> None:
        self.app_routes = app_object.routes
        super().__init__(request, client_address, server, app_object, config)

    def _refuse_method(self) -> None:
        # Whatever body came with it is read and dropped, and the connection closed, so that it is
        # never taken for the next request on the connection.
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length) <= MAX_REFUSED_BODY:
            self.rfile.read(int(length))
        self.close_connection = True
        error = method_not_allowed(self.command[:16])
        body = json.dumps(error.body()).encode()
        self.send_response(error.status)
        try:
            route = RouteMatcher(list(self.app_routes)).match_route(self.path).route
        except ValueError:
            route = ""
        self.send_header("Allow", ", ".join(sorted(self.app_routes.get(route, {}))))
        self.send_header("Content-Type", "application/json")
        self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(body)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._refuse_method
        raise AttributeError(name)


class _QuietRequestHandler(_RequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: for tests, whose stderr is the CLI's."""


def make_api_server(
    app_obj: Chalice, config: Config, host: str, port: int, *, access_log: bool = True
) -> LocalDevServer:
    """Chalice's local server for the app; bound, not yet serving (port 0: any free port).

    create_local_server() rebases the app's class onto LocalChalice (thread-local requests) and
    fails if asked twice for the same app, so a second server for it (tests) skips that step.
    """
    if isinstance(app_obj, LocalChalice):
        server = LocalDevServer(app_obj, config, host, port)
    else:
        server = create_local_server(app_obj, config, host, port)
    handler = _RequestHandler if access_log else _QuietRequestHandler
    server.server.RequestHandlerClass = functools.partial(
        handler, app_object=app_obj, config=config
    )
    return server


def import_app(project_dir: Path) -> ModuleType:
    """app.py, imported as `chalice local` imports it: from the project directory."""
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))
    module = importlib.import_module("app")
    if not isinstance(getattr(module, "app", None), Chalice):
        raise StackError(f"{project_dir / 'app.py'} defines no Chalice object named 'app'")
    return module


@dataclass
class LocalStack:
    options: StackOptions
    aws_endpoint: str = ""
    api_endpoint: str = ""
    resources: dict[str, str] = field(default_factory=dict)
    access_key: dict[str, str] = field(default_factory=dict)
    transfer: dict[str, str] = field(default_factory=dict)
    driver: LocalDriver | None = None
    _moto: ThreadedMotoServer | None = None
    _api: LocalDevServer | None = None
    _api_thread: threading.Thread | None = None
    _state_written: bool = False
    _started_at: int = 0

    @property
    def state_file(self) -> Path:
        return self.options.state_dir / STATE_FILE

    def start(self) -> dict[str, Any]:
        o = self.options
        check_port_free(o.host, o.aws_port, "--aws-port")
        check_port_free(o.host, o.api_port, "--api-port")
        self._start_moto()
        os.environ.update(local_environment(o, self.aws_endpoint))
        for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
            os.environ.pop(name, None)

        settings = Settings.from_env()
        self.resources = self._create_resources(settings)
        os.environ["OPENCTS_INGEST_DLQ_URL"] = self.resources["ingest_dlq_url"]
        # For functions declared on the traces table's stream (read when app.py is imported).
        os.environ["OPENCTS_TRACES_STREAM_ARN"] = self.resources["traces_stream_arn"]
        # The local subscriber, and the login audit alarming on it (docs/OPERATIONS.md).
        self.resources.update(ensure_local_subscriber(self._client("sns"), self._client("sqs")))
        os.environ.update(
            login_audit_environment(self.resources["notifications_topic_arn"], o.region)
        )
        setup = build(Settings.from_env())
        setup.projects.register(o.project_id, o.domain_id)
        demo_key = setup.keys.create(
            user=KeyUser(DEMO_USER_ID, DEMO_USER_NAME),
            domain_id=o.domain_id,
            project_ids=[o.project_id],
            policy=FULL_ACCESS,
        )
        self.access_key = {"id": demo_key.key.access_key_id, "secret": demo_key.secret}
        self.transfer = enable_demo_transfer(setup, self._client("s3"), o)
        self.resources.update(trace_bucket=TRACE_BUCKET, trace_prefix=TRACE_PREFIX)

        app_module = import_app(o.project_dir)
        app_obj: Chalice = app_module.app
        prebuild = getattr(app_module, "services", None)
        if o.matcher_factory is not None:
            app_module.use_services(build(Settings.from_env(), matcher_factory=o.matcher_factory))
        elif callable(prebuild):
            prebuild()  # built once here, not raced for by the API and driver threads
        self._start_api(app_obj)
        self.driver = LocalDriver(
            app_obj,
            self._client,
            o.region,
            stage=STAGE,
            fast=o.fast,
            fast_period_seconds=o.fast_period_seconds,
            default_stream_arn=self.resources["traces_stream_arn"],
            account_id=o.domain_id,
        )
        self.driver.start()
        for line in self.driver.describe():
            logger.info("driving %s", line)
        for line in self.driver.skipped:
            logger.info("not driven: %s", line)
        self._started_at = int(time.time())
        state = self.state()
        write_state(o.state_dir, state)
        self._state_written = True
        return state

    def state(self, status: str = RUNNING) -> dict[str, Any]:
        o = self.options
        return {
            "status": status,
            "api_endpoint": self.api_endpoint,
            "aws_endpoint": self.aws_endpoint,
            "region": o.region,
            "project_id": o.project_id,
            "domain_id": o.domain_id,
            "stage": STAGE,
            "fast": o.fast,
            "resources": self.resources,
            # The demo key: a throw-away secret for the embedded AWS, kept where the CLI looks.
            "access_key": self.access_key,
            # Where the transfer cycle writes the demo project's trace files.
            "transfer": self.transfer,
            "functions": self.driver.describe() if self.driver else [],
            "pid": os.getpid(),
            "started_at": self._started_at,
        }

    def stop(self) -> None:
        """Stops whatever was started, in reverse order; safe after a failed start."""
        if self.driver is not None:
            self.driver.stop()
        if self._api is not None:
            self._api.server.shutdown()
            self._api.server.server_close()
            if self._api_thread is not None:
                self._api_thread.join(5)
        if self._moto is not None:
            self._moto.stop()
        if self._state_written:
            stopped = self.state(STOPPED)
            stopped["stopped_at"] = int(time.time())
            write_state(self.options.state_dir, stopped)

    # -- parts -----------------------------------------------------------------------------------
    def _start_moto(self) -> None:
        o = self.options
        moto = ThreadedMotoServer(o.host, o.aws_port, verbose=False)
        # start() waits without a timeout for a server that may never bind: bound it here.
        starter = threading.Thread(target=moto.start, name="opencts-moto-start", daemon=True)
        starter.start()
        starter.join(START_TIMEOUT_SECONDS)
        if starter.is_alive():
            raise StackError(f"the embedded AWS (moto) did not start on {o.host}:{o.aws_port}")
        self._moto = moto
        host, port = moto.get_host_and_port()
        self.aws_endpoint = f"http://{_url_host(host)}:{port}"

    def _client(self, service: str) -> Any:
        return client(service, self.options.region, self.aws_endpoint)

    def _create_resources(self, settings: Settings) -> dict[str, str]:
        c = self._client
        return ensure_all(settings, c("dynamodb"), c("sqs"), c("s3"), c("kms"))

    def _start_api(self, app_obj: Chalice) -> None:
        o = self.options
        validate_routes(app_obj.routes)
        config = chalice_config(o.project_dir, app_obj)
        try:
            server = make_api_server(app_obj, config, o.host, o.api_port)
        except OSError as e:
            raise StackError(
                f"port {o.api_port} on {o.host} is already in use ({e.strerror}); "
                "choose another port with --api-port"
            ) from None
        self._api = server
        self._api_thread = threading.Thread(
            target=server.server.serve_forever, name="opencts-api", daemon=True
        )
        self._api_thread.start()
        host, port = server.server.server_address[:2]
        self.api_endpoint = f"http://{_url_host(str(host))}:{port}"


def enable_demo_transfer(setup: Services, s3: Any, o: StackOptions) -> dict[str, str]:
    """Enables CTS for the demo project with transfer to a local bucket (trace files every
    cycle, digest files every digest period) and to CloudWatch Logs."""
    ensure_bucket(s3, TRACE_BUCKET, o.region)
    setup.trackers.create_tracker(
        o.project_id,
        {
            "tracker_type": "system",
            "tracker_name": "system",
            "obs_info": {"bucket_name": TRACE_BUCKET, "file_prefix_name": TRACE_PREFIX},
            "is_lts_enabled": True,
            "is_support_validate": True,
        },
    )
    return {"bucket": TRACE_BUCKET, "prefix": TRACE_PREFIX, "tracker": "system"}


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def banner(state: dict[str, Any], state_file: Path) -> str:
    project = state["project_id"]
    key = state.get("access_key") or {}
    functions = "\n".join(f"                  {line}" for line in state.get("functions", []))
    fast = "on" if state["fast"] else "off"
    return f"""
OpenCTS local stack is up (stage {state["stage"]}, fast schedules {fast})
  API             {state["api_endpoint"]}
  web console     {state["api_endpoint"]}/console  (sign in with the demo key below)
  embedded AWS    {state["aws_endpoint"]}  (moto; any credentials, region {state["region"]})
  demo project    {project}  (domain {state["domain_id"]})
  demo access key {key.get("id", "-")}  (CTS FullAccess on {project})
  demo secret     {key.get("secret", "-")}
  state file      {state_file}
  functions
{functions or "                  (none)"}

Try it:
  .venv/bin/opencts demo
  .venv/bin/opencts traces --service-type ECS --user alice
  .venv/bin/opencts traces --service-type ECS --limit 5 --output json
  .venv/bin/opencts notifications tail --follow   # notifications and login-audit alarms

Every API call is signed with the access key (SDK-HMAC-SHA256), so plain curl is refused with
CTS.0401: use `opencts` (it signs with the key in the state file) or the official Huawei Cloud
SDK (huaweicloudsdkcts) with the key above.

Ctrl-C stops everything.
"""


def configure_logging() -> None:
    """The stack's own lines go to stderr, once.

    "opencts.local" sits under the app's "opencts" logger, which Chalice and Powertools give
    handlers of their own (the function logs, on stdout); the stack's lines do not belong there.
    moto logs every AWS call and botocore every credential look-up: only their warnings are kept.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    local = logging.getLogger("opencts.local")
    local.addHandler(handler)
    local.setLevel(logging.INFO)
    local.propagate = False
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format=LOG_FORMAT)
    # Werkzeug (moto's server) turns its request log on unless a level is set.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chalicelib.local",
        description="Run OpenCTS locally: moto as AWS, the REST API and the event functions.",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help=f"fire scheduled functions every {FAST_PERIOD_SECONDS:g} s instead of their schedule",
    )
    parser.add_argument("--api-port", type=int, default=8000, help="REST API port (0: any free)")
    parser.add_argument("--aws-port", type=int, default=5000, help="embedded AWS port (0: any)")
    parser.add_argument(
        "--state-dir", type=Path, default=Path(STATE_DIR), help="where local.json is written"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    stack = LocalStack(
        StackOptions(
            host=args.host,
            api_port=args.api_port,
            aws_port=args.aws_port,
            state_dir=args.state_dir,
            fast=args.fast,
        )
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()
        # A second Ctrl-C ends the process at once, should shutting down ever hang.
        signal.signal(signum, signal.SIG_DFL)

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        state = stack.start()
    except StackError as e:
        print(f"opencts local: {e}", file=sys.stderr)
        stack.stop()
        return 1
    except Exception:
        logger.exception("the local stack failed to start")
        stack.stop()
        return 1
    print(banner(state, stack.state_file), flush=True)
    while not stop.wait(1.0):
        pass
    logger.info("stopping the local stack")
    stack.stop()
    return 0
