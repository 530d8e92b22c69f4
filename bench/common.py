"""Shared helpers of the benchmarks: the embedded AWS (moto), the real tables and domain objects,
realistic reported traces, DynamoDB call counters, and the one-JSON-line output.

Everything runs in-process against moto with fake credentials; time comes from a FixedClock and
every random choice from a seeded `random.Random`, so two runs generate the same traces.

moto's DynamoDB spends most of its CPU in two places that have nothing to do with OpenCTS:
building an item re-measures the whole item at every attribute (quadratic, ~5 ms per trace item),
and every Query sorts all the items of the table and then walks them (seconds per Query at 50,000
traces). `fast_moto()` replaces both with exact equivalents (the item size limit is checked once on
the total; a Query only walks the items whose key attribute equals the queried value, found through
a lazily rebuilt hash index) so that results, ScannedCount and LastEvaluatedKey are unchanged (the
unit test compares a run with and without it). Requests and responses skip moto's
member-by-member walk of every AttributeValue when its JSON form is already the parsed form.
`--stock-moto` turns all of it off.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from moto.core.botocore_stubber import BotocoreStubber
from moto.core.parse import BaseJSONParser
from moto.core.serialize import BaseJSONSerializer
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import Table
from moto.dynamodb.models.utilities import bytesize

from chalicelib import aws
from chalicelib.catalog import Catalog
from chalicelib.clock import MS_PER_HOUR, FixedClock
from chalicelib.control import DynamoControlTable
from chalicelib.ingest import Ingestor
from chalicelib.projects import ProjectRegistry
from chalicelib.resources import control_table_definition, ensure_table, traces_table_definition
from chalicelib.store import DynamoTraceTable, TraceStore

if TYPE_CHECKING:
    import random

    from mypy_boto3_dynamodb import DynamoDBClient

REGION = "us-east-1"
DOMAIN = "123456789012"
# 2026-11-20T12:00:00Z, the tests' "now".
NOW_MS = 1_795_176_000_000
DEFAULT_SEED = 20261120
TRACES_TABLE = "opencts-bench-traces"
CONTROL_TABLE = "opencts-bench-control"


def configure_aws_env() -> None:
    """Fake credentials for moto; never the caller's real ones."""
    os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ["AWS_REGION"] = REGION
    os.environ.pop("AWS_PROFILE", None)
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SECURITY_TOKEN",
        "AWS_SESSION_TOKEN",
    ):
        os.environ[name] = "testing"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(result: dict[str, Any]) -> None:
    """The benchmark's one line on stdout."""
    print(json.dumps(result, separators=(", ", ": ")), flush=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# --- moto: time spent in the backend, and exact speed-ups --------------------------------------


@dataclass
class BackendTimer:
    """CPU time this process spent inside moto (request parsing, the backend, the response)."""

    seconds: float = 0.0
    calls: int = 0


BACKEND = BackendTimer()
_CANDIDATES: ContextVar[list[Any] | None] = ContextVar("bench_candidates", default=None)


@contextmanager
def timed_backend() -> Iterator[BackendTimer]:
    """Accumulates into BACKEND the time of every request moto answers, while active."""
    original = BotocoreStubber.process_request

    def process_request(self: Any, request: Any) -> Any:
        start = time.process_time()
        try:
            return original(self, request)
        finally:
            BACKEND.seconds += time.process_time() - start
            BACKEND.calls += 1

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    try:
        yield BACKEND
    finally:
        BotocoreStubber.process_request = original  # type: ignore[method-assign]


@contextmanager
def fast_moto(enabled: bool = True) -> Iterator[None]:
    """Exact, faster equivalents of moto's item construction, Query candidate selection and
    AttributeValue (de)serialisation, while active (see the module docstring)."""
    if not enabled:
        yield
        return
    saved: dict[tuple[Any, str], Any] = {
        (BaseJSONParser, "_parse_structure"): BaseJSONParser._parse_structure,
        (BaseJSONSerializer, "_serialize_type_structure"): (
            BaseJSONSerializer._serialize_type_structure
        ),
        (Item, "__init__"): Item.__init__,
        (Table, "query"): Table.query,
        (Table, "all_items"): Table.all_items,
        (Table, "put_item"): Table.put_item,
        (Table, "delete_item"): Table.delete_item,
        (DynamoDBBackend, "update_item"): DynamoDBBackend.update_item,
        (DynamoDBBackend, "transact_write_items"): DynamoDBBackend.transact_write_items,
    }
    original_parse: Callable[..., Any] = BaseJSONParser._parse_structure
    original_structure: Callable[..., Any] = BaseJSONSerializer._serialize_type_structure
    original_query: Callable[..., Any] = Table.query
    original_all_items: Callable[..., Any] = Table.all_items
    original_put: Callable[..., Any] = Table.put_item
    original_delete: Callable[..., Any] = Table.delete_item

    def parse_structure(self: Any, shape: Any, value: Any) -> Any:
        # An AttributeValue of plain JSON types parses to itself (moto walks its shape member
        # by member); anything else takes moto's path.
        if shape.name == "AttributeValue" and _plain_attribute(value):
            return value
        return original_parse(self, shape, value)

    def structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        # The same for responses (moto's walk costs ~5 ms per returned trace item).
        if key and shape.name == "AttributeValue" and _plain_attribute(value):
            self._default_serialize(serialized, value, shape, key)
            return
        original_structure(self, serialized, value, shape, key)

    def item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        # moto checks the 405,000-byte limit after each attribute; sizes are non-negative, so
        # checking the total once is the same rule.
        self.hash_key = hash_key
        self.range_key = range_key
        self.attrs = LimitedSizeDict()
        total = 0
        for key, value in attrs.items():
            typed = DynamoType(value)
            total += bytesize(key) + typed.size()
            dict.__setitem__(self.attrs, key, typed)
        if total > 405000:
            raise ItemSizeTooLarge

    def bump(table: Any) -> None:
        table.__dict__["_bench_version"] = table.__dict__.get("_bench_version", 0) + 1

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original_put(self, *args, **kwargs)
        finally:
            bump(self)

    def delete_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original_delete(self, *args, **kwargs)
        finally:
            bump(self)

    def in_place(original: Callable[..., Any]) -> Callable[..., Any]:
        # UpdateItem and transactions change items in place: every index may be stale.
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return original(self, *args, **kwargs)
            finally:
                for table in self.tables.values():
                    bump(table)

        return wrapper

    def stored_items(table: Any) -> Iterator[Any]:
        for bucket in table.items.values():
            if table.range_key_attr:
                yield from bucket.values()
            else:
                yield bucket

    def buckets(table: Any, attribute: str) -> dict[Any, list[Any]]:
        version = table.__dict__.get("_bench_version", 0)
        cache = table.__dict__.setdefault("_bench_index", {})
        got = cache.get(attribute)
        if got is None or got[0] != version:
            index: dict[Any, list[Any]] = {}
            for item in stored_items(table):
                value = item.attrs.get(attribute)
                if value is not None:
                    index.setdefault(value, []).append(item)
            got = cache[attribute] = (version, index)
        result: dict[Any, list[Any]] = got[1]
        return result

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        conditions = kwargs.get("hash_key_conditions") or []
        candidates: list[Any]
        if index_name and len(conditions) == 1:
            attribute, value = conditions[0]
            candidates = list(buckets(self, attribute).get(value, ()))
        elif not index_name and hash_key is not None:
            bucket = self.items.get(hash_key)
            if bucket is None:
                candidates = []
            elif self.range_key_attr:
                candidates = list(bucket.values())
            else:
                candidates = [bucket]
        else:
            return original_query(self, hash_key, *args, **kwargs)
        # moto's query re-checks every key condition on the candidates and sorts them by the
        # full key, so their order here does not matter.
        token = _CANDIDATES.set(candidates)
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            _CANDIDATES.reset(token)

    def all_items(self: Any) -> Any:
        candidates = _CANDIDATES.get()
        return original_all_items(self) if candidates is None else candidates

    BaseJSONParser._parse_structure = parse_structure  # type: ignore[method-assign]
    BaseJSONSerializer._serialize_type_structure = structure  # type: ignore[method-assign]
    Item.__init__ = item_init  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]
    Table.put_item = put_item  # type: ignore[method-assign]
    Table.delete_item = delete_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = in_place(  # type: ignore[method-assign]
        saved[(DynamoDBBackend, "update_item")]
    )
    DynamoDBBackend.transact_write_items = in_place(  # type: ignore[method-assign]
        saved[(DynamoDBBackend, "transact_write_items")]
    )
    try:
        yield
    finally:
        for (owner, name), function in saved.items():
            setattr(owner, name, function)


def _plain_attribute(value: Any) -> bool:
    """An AttributeValue whose JSON form is itself: no binary, strings where strings belong."""
    if type(value) is not dict or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        return type(inner) is str
    if kind in ("BOOL", "NULL"):
        return type(inner) is bool
    if kind in ("SS", "NS"):
        return type(inner) is list and all(type(v) is str for v in inner)
    if kind == "M":
        return type(inner) is dict and all(_plain_attribute(v) for v in inner.values())
    if kind == "L":
        return type(inner) is list and all(_plain_attribute(v) for v in inner)
    return False


# --- the stack: real tables, real domain objects ---------------------------------------------


@dataclass
class Stack:
    client: DynamoDBClient
    traces_table: str
    control_table: str
    clock: FixedClock
    projects: ProjectRegistry
    store: TraceStore
    catalog: Catalog
    ingestor: Ingestor


def make_stack(
    clock: FixedClock,
    traces_table: str = TRACES_TABLE,
    control_table: str = CONTROL_TABLE,
    *,
    validate_params: bool = True,
) -> Stack:
    """Creates both tables (inside an active `mock_aws()`) and wires the ingest path to them.

    The DynamoDB client is the one the functions use (`chalicelib.aws.client`, uncached so that
    each stack has its own event handlers). `validate_params=False` gives instead a plain client
    without botocore's client-side parameter validation, which walks every attribute of every
    item: for benchmarks whose figures do not include client CPU."""
    client: DynamoDBClient = (
        aws.client.__wrapped__("dynamodb", REGION)
        if validate_params
        else boto3.client("dynamodb", region_name=REGION, config=Config(parameter_validation=False))
    )
    ensure_table(client, traces_table_definition(traces_table))
    ensure_table(client, control_table_definition(control_table))
    control = DynamoControlTable(client, control_table)
    projects = ProjectRegistry(control, clock)
    store = TraceStore(DynamoTraceTable(client, traces_table))
    catalog = Catalog(control)
    return Stack(
        client,
        traces_table,
        control_table,
        clock,
        projects,
        store,
        catalog,
        Ingestor(projects, store, catalog, clock),
    )


# --- DynamoDB call counters --------------------------------------------------------------------


@dataclass
class DynamoCalls:
    """Counts calls per operation and the items DynamoDB read, via botocore events."""

    calls: dict[str, int] = field(default_factory=dict)
    query_scanned: int = 0  # sum of Query ScannedCount
    get_items_read: int = 0  # GetItem calls that found an item
    scans: int = 0

    def attach(self, client: DynamoDBClient) -> DynamoCalls:
        events = client.meta.events
        events.register("before-call.dynamodb", self._before_call, unique_id="bench-calls")
        events.register(
            "after-call.dynamodb.Query", self._after_query, unique_id="bench-query-scanned"
        )
        events.register("after-call.dynamodb.GetItem", self._after_get, unique_id="bench-get-read")
        events.register("before-call.dynamodb.Scan", self._before_scan, unique_id="bench-scan")
        return self

    def reset(self) -> None:
        self.calls.clear()
        self.query_scanned = self.get_items_read = self.scans = 0

    @property
    def items_read(self) -> int:
        return self.query_scanned + self.get_items_read

    def _before_call(self, model: Any, **_: Any) -> None:
        self.calls[model.name] = self.calls.get(model.name, 0) + 1

    def _after_query(self, parsed: dict[str, Any], **_: Any) -> None:
        self.query_scanned += int(parsed.get("ScannedCount", 0))

    def _after_get(self, parsed: dict[str, Any], **_: Any) -> None:
        if "Item" in parsed:
            self.get_items_read += 1

    def _before_scan(self, **_: Any) -> None:
        self.scans += 1


# --- realistic traces ----------------------------------------------------------------------------

SERVICES = (
    "ECS", "EVS", "VPC", "IAM", "RDS", "ELB", "CCE", "DNS", "KMS", "SMN",
    "CTS", "FunctionGraph", "DCS", "DMS", "CES", "LTS", "APIG", "SFS", "CBR", "NAT",
)  # fmt: skip
NOUNS = (
    "server", "volume", "snapshot", "vpc", "subnet", "securityGroup", "user", "group", "agency",
    "instance", "backup", "parameterGroup", "loadbalancer", "listener", "pool", "cluster",
    "node", "nodePool", "zone", "recordset", "key", "grant", "topic", "subscription", "tracker",
    "notification", "function", "trigger", "queue", "alarm", "logGroup", "logStream", "api",
    "share", "vault", "policy", "gateway", "eip", "image", "template",
)  # fmt: skip
VERBS = (
    "create", "delete", "update", "modify", "start", "stop", "reboot", "attach", "detach",
    "resize", "enable", "disable", "tag", "restore",
)  # fmt: skip
USER_AGENTS = (
    "huaweicloud-sdk-python/3.1.80",
    "aws-cli/2.17.1 Python/3.11.8 Linux/6.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "terraform-provider-huaweicloud/1.66.0",
    "console.huaweicloud.com",
)
DATA_TRACKER = "bench-data"
_STATUS_CODES = (200, 201, 202, 400, 403, 404, 409, 500, 503)
_STATUS_WEIGHTS = (70, 8, 8, 4, 4, 3, 1, 1, 1)
_TAG_KEYS = ("env", "team", "app", "cost-center", "owner", "tier")
DATA_OPERATIONS = ("PutObject", "GetObject", "DeleteObject", "HeadObject")


def _zipf_weights(n: int, s: float) -> list[float]:
    return [1.0 / (rank + 1) ** s for rank in range(n)]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True)
class Operation:
    service_type: str
    resource_type: str
    trace_name: str


@dataclass(frozen=True)
class Vocabulary:
    """The cardinalities of a realistic project: services, resource types, ids, names, users."""

    operations: tuple[Operation, ...]
    operation_weights: tuple[float, ...]
    resource_ids: dict[tuple[str, str], tuple[str, ...]]
    resource_id_weights: dict[tuple[str, str], tuple[float, ...]]
    users: tuple[dict[str, Any], ...]
    user_weights: tuple[float, ...]

    @property
    def services(self) -> set[str]:
        return {o.service_type for o in self.operations}

    @property
    def resource_types(self) -> set[tuple[str, str]]:
        return {(o.service_type, o.resource_type) for o in self.operations}

    @property
    def trace_names(self) -> set[str]:
        return {o.trace_name for o in self.operations}


def build_vocabulary(
    rng: random.Random,
    services: int = 20,
    resource_types: int = 60,
    resource_ids: int = 2000,
    trace_names: int = 150,
    users: int = 40,
) -> Vocabulary:
    """Services with resource types, their operations (trace names) and resources, and users.

    Popularity is skewed (Zipf-like): a few services, resources and users produce most traces.
    """
    chosen = list(SERVICES[:services])
    types_by_service: dict[str, list[str]] = {s: [] for s in chosen}
    nouns = list(NOUNS)
    for n in range(resource_types):
        service = chosen[n % len(chosen)]
        # The three types of a service take distinct nouns.
        noun = nouns[(n + 13 * (n // len(chosen))) % len(nouns)]
        types_by_service[service].append(f"{service.lower()}_{noun.lower()}")
    pairs = [(s, t) for s in chosen for t in types_by_service[s]]

    operations: list[Operation] = []
    names: set[str] = set()
    verbs = list(VERBS)
    n = 0
    while len(operations) < trace_names:
        service, rtype = pairs[n % len(pairs)]
        noun = rtype.split("_", 1)[1]
        verb = verbs[(n // len(pairs) + n) % len(verbs)]
        name = f"{verb}{noun[:1].upper()}{noun[1:]}"
        if name not in names:
            names.add(name)
            operations.append(Operation(service, rtype, name))
        n += 1
    rng.shuffle(operations)

    ids: dict[tuple[str, str], list[str]] = {p: [] for p in pairs}
    for n in range(resource_ids):
        ids[pairs[n % len(pairs)]].append(_uuid(rng))

    people = []
    for n in range(users):
        name = f"user{n:03d}" if n % 7 else f"svc-agent-{n:03d}"
        people.append(
            {
                "id": f"{rng.getrandbits(64):016x}",
                "name": name,
                "user_name": name,
                "domain": {"id": DOMAIN, "name": "acme"},
                "account_id": DOMAIN,
                "access_key_id": f"AK{rng.getrandbits(72):018X}",
                "principal_urn": f"iam::{DOMAIN}:user:{name}",
                "principal_id": f"{rng.getrandbits(64):016x}",
                "principal_is_root_user": "false",
                "type": "User",
            }
        )
    return Vocabulary(
        tuple(operations),
        tuple(_zipf_weights(len(operations), 0.9)),
        {p: tuple(v) for p, v in ids.items()},
        {p: tuple(_zipf_weights(len(v), 1.1)) for p, v in ids.items()},
        tuple(people),
        tuple(_zipf_weights(len(people), 1.0)),
    )


@dataclass
class TraceFactory:
    """Reported traces as a reporter sends them (raw dicts, like tests/conftest.py `trace()`)."""

    rng: random.Random
    vocabulary: Vocabulary
    data_share: float = 0.05

    def trace(self, time_ms: int) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < self.data_share:
            return self._data_trace(time_ms)
        op = rng.choices(self.vocabulary.operations, self.vocabulary.operation_weights)[0]
        pair = (op.service_type, op.resource_type)
        ids = self.vocabulary.resource_ids[pair]
        resource_id = rng.choices(ids, self.vocabulary.resource_id_weights[pair])[0]
        code = rng.choices(_STATUS_CODES, _STATUS_WEIGHTS)[0]
        rating = "normal" if code < 400 else ("warning" if code < 500 else "incident")
        trace_type = rng.choices(("ApiCall", "ConsoleAction", "SystemAction"), (70, 25, 5))[0]
        trace: dict[str, Any] = {
            "trace_id": _uuid(rng),
            "trace_name": op.trace_name,
            "trace_rating": rating,
            "trace_type": trace_type,
            "time": time_ms,
            "service_type": op.service_type,
            "resource_type": op.resource_type,
            "resource_id": resource_id,
            "resource_name": f"{op.resource_type.split('_', 1)[1]}-{resource_id[:8]}",
            "request": self._request(op, resource_id),
            "response": self._response(code),
            "code": str(code),
            "api_version": rng.choice(("v1", "v2", "v3", "v1.1")),
            "request_id": _uuid(rng),
            "endpoint": f"{op.service_type.lower()}.{REGION}.example.com",
            "resource_url": f"/v2/{op.resource_type}/{resource_id}",
            "enterprise_project_id": rng.choice(("0", "0", "0", _uuid(rng))),
            "read_only": False,
            "user_agent": rng.choice(USER_AGENTS),
            "total_time": rng.randint(3, 2500),
        }
        if trace_type == "SystemAction" and rng.random() < 0.5:
            trace["source_ip"] = ""  # internal operations carry no operator
        else:
            trace["user"] = rng.choices(self.vocabulary.users, self.vocabulary.user_weights)[0]
            trace["source_ip"] = self._ip()
        return trace

    def _data_trace(self, time_ms: int) -> dict[str, Any]:
        rng = self.rng
        op = rng.choice(DATA_OPERATIONS)
        bucket = f"bucket-{rng.randint(1, 12):02d}"
        key = f"logs/{rng.randint(2020, 2026)}/{_uuid(rng)[:8]}.json"
        return {
            "trace_id": _uuid(rng),
            "trace_name": op,
            "trace_rating": "normal",
            "trace_type": "ObsSDK",
            "tracker_name": DATA_TRACKER,
            "time": time_ms,
            "service_type": "OBS",
            "resource_type": "object",
            "resource_id": f"{bucket}/{key}",
            "resource_name": key,
            "source_ip": self._ip(),
            "user": rng.choices(self.vocabulary.users, self.vocabulary.user_weights)[0],
            "request": {"bucket": bucket, "key": key, "headers": {"x-obs-acl": "private"}},
            "response": {"status": 200, "etag": f'"{rng.getrandbits(128):032x}"'},
            "code": "200",
            "request_id": _uuid(rng),
            "user_agent": USER_AGENTS[0],
            "content_length": rng.randint(100, 10_000_000),
            "total_time": rng.randint(1, 800),
        }

    def _ip(self) -> str:
        rng = self.rng
        subnet = rng.choice(("10.0", "10.12", "192.168", "203.0", "198.51"))
        return f"{subnet}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

    def _request(self, op: Operation, resource_id: str) -> dict[str, Any]:
        rng = self.rng
        tags = [
            {"key": k, "value": f"{k}-{rng.randint(1, 99)}"}
            for k in rng.sample(_TAG_KEYS, rng.randint(1, 4))
        ]
        return {
            op.resource_type.split("_", 1)[1]: {
                "id": resource_id,
                "name": f"{op.trace_name}-{rng.randint(1, 999)}",
                "flavor": rng.choice(("s6.large.2", "c7.xlarge.4", "m6.2xlarge.8")),
                "availability_zone": f"{REGION}{rng.choice('abc')}",
                "tags": tags,
                "metadata": {"description": "x" * rng.randint(10, 120)},
            },
            "client_token": _uuid(self.rng),
        }

    def _response(self, code: int) -> dict[str, Any]:
        rng = self.rng
        if code >= 400:
            return {
                "error_code": f"{rng.choice(('ECS', 'VPC', 'IAM'))}.{rng.randint(1000, 9999)}",
                "error_msg": "The request was refused: " + "reason " * rng.randint(2, 12),
                "request_id": _uuid(rng),
            }
        return {"job_id": _uuid(rng), "status": "SUCCESS", "request_id": _uuid(rng)}

    def traces(self, times: Sequence[int]) -> list[dict[str, Any]]:
        return [self.trace(t) for t in times]


def recent_times(
    rng: random.Random, count: int, now_ms: int, span_ms: int = MS_PER_HOUR
) -> list[int]:
    """`count` trace times in the `span_ms` before `now_ms`, oldest first."""
    return sorted(now_ms - rng.randrange(1, span_ms) for _ in range(count))


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
