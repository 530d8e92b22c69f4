"""Builds the domain objects from settings and boto3 clients: the one place that knows both."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib.access_keys import AccessKeyStore, KmsEncryptor
from chalicelib.api import TraceApi
from chalicelib.aws import client
from chalicelib.catalog import Catalog
from chalicelib.clock import Clock, SystemClock
from chalicelib.config import Settings
from chalicelib.control import DynamoControlTable
from chalicelib.data_events import DataEventRecorder
from chalicelib.deliveries import DeliveryLog
from chalicelib.digests import (
    ChainHeads,
    DigestWriter,
    KmsDigestSigner,
    PublicKeyRegistry,
    S3DigestObjects,
    integrity_state,
)
from chalicelib.ingest import Ingestor
from chalicelib.notification_rules import NotificationMatcher
from chalicelib.notification_types import Matcher
from chalicelib.notification_wiring import Deliveries, MatcherFactory, build_deliveries
from chalicelib.notifications import NotificationService, NotificationStore
from chalicelib.observability import count, ingest_outcome, seconds, tracker_lag
from chalicelib.projects import ProjectRegistry
from chalicelib.query import TraceFinder
from chalicelib.store import DynamoTraceTable, TraceStore
from chalicelib.trackers import S3TransferBuckets, TrackerService
from chalicelib.transfer import TransferCycle
from chalicelib.transfer_adapters import (
    CloudWatchLogSink,
    DynamoRecordedTraces,
    S3TraceFileBucket,
)

EXPORT_URL_SECONDS = 300


@dataclass
class Services:
    settings: Settings
    api: TraceApi
    projects: ProjectRegistry
    dead_letter: Callable[[dict[str, Any]], None]
    trackers: TrackerService
    keys: AccessKeyStore
    clock: Clock
    transfer: TransferCycle
    notifications: NotificationService | None = None
    # The compiled notification rules of this container (delivery matches stored traces with it).
    matcher: Matcher | None = None
    deliveries: Deliveries | None = None
    digests: DigestWriter | None = None
    public_keys: PublicKeyRegistry | None = None


def build(
    settings: Settings, clock: Clock | None = None, matcher_factory: MatcherFactory | None = None
) -> Services:
    clock = clock or SystemClock()

    def aws(service: str, region: str = "") -> Any:
        return client(service, region or settings.region, settings.aws_endpoint)

    control = DynamoControlTable(aws("dynamodb"), settings.control_table)
    projects = ProjectRegistry(control, clock)
    store = TraceStore(DynamoTraceTable(aws("dynamodb"), settings.traces_table))
    catalog = Catalog(control)
    # One store per container: its cache of decrypted secrets serves every request.
    access_keys = AccessKeyStore(control, KmsEncryptor(aws("kms"), settings.keys_kms_key), clock)

    def export_sink(key: str, body: bytes) -> str:
        s3 = aws("s3")
        s3.put_object(Bucket=settings.export_bucket, Key=key, Body=body, ContentType="text/csv")
        url: str = s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": settings.export_bucket, "Key": key},
            ExpiresIn=EXPORT_URL_SECONDS,
        )
        return url

    def dead_letter(record: dict[str, Any]) -> None:
        if not settings.ingest_dlq_url:
            raise RuntimeError("no dead-letter queue configured (OPENCTS_INGEST_DLQ_URL)")
        aws("sqs").send_message(QueueUrl=settings.ingest_dlq_url, MessageBody=json.dumps(record))

    finder = TraceFinder(store)
    deliveries = DeliveryLog(control)  # written by the transfer cycle, read by the digests
    heads = ChainHeads(control)
    notification_store = NotificationStore(control)
    notifications = NotificationService(
        notification_store, projects, clock, finder=finder
    )
    trackers = TrackerService(
        notification_count=notifications.count,
        integrity=integrity_state(heads, clock, settings.digest_period_s * 1000),
        table=control,
        buckets=S3TransferBuckets(aws("s3"), settings.region),
        projects=projects,
        clock=clock,
        region=settings.region,
        domain_id=settings.domain_id,
    )
    ingestor = Ingestor(projects, store, catalog, clock, observe=ingest_outcome)
    api = TraceApi(
        projects=projects,
        ingestor=ingestor,
        finder=finder,
        catalog=catalog,
        clock=clock,
        export_sink=export_sink if settings.export_bucket else None,
        cloudtrail_project_id=settings.cloudtrail_project_id,
        data_events=DataEventRecorder(trackers.watchers, ingestor, count),
    )
    # The notifications' own compiled rules, unless a caller (a benchmark) brings another matcher.
    matcher: Matcher = (
        matcher_factory(control, clock)
        if matcher_factory
        else NotificationMatcher(notification_store, clock)
    )
    public_keys = PublicKeyRegistry(control)

    def digest_trackers() -> list[Any]:
        domain = settings.domain_id
        return [t for p in projects.domain_projects(domain) for t in trackers.trackers(p)]

    digests = DigestWriter(
        trackers=digest_trackers,
        deliveries=deliveries,
        heads=heads,
        keys=public_keys,
        objects=S3DigestObjects(aws("s3")),
        signer=KmsDigestSigner(aws("kms"), settings.digest_kms_key),
        clock=clock,
        region=settings.region,
        domain_id=settings.domain_id,
        period_ms=settings.digest_period_s * 1000,
        count=count,
    )
    transfer = TransferCycle(
        projects=projects,
        trackers=trackers,
        recorded=DynamoRecordedTraces(aws("dynamodb"), settings.traces_table),
        control=control,
        bucket=S3TraceFileBucket(aws("s3")),
        logs=CloudWatchLogSink(aws("logs")),
        deliveries=deliveries,
        clock=clock,
        region=settings.region,
        count=count,
        lag=seconds,
        tracker_lag=tracker_lag,
        settle_ms=settings.transfer_settle_ms,
    )
    return Services(
        settings,
        api,
        projects,
        dead_letter,
        trackers=trackers,
        keys=access_keys,
        clock=clock,
        transfer=transfer,
        notifications=notifications,
        matcher=matcher,
        deliveries=build_deliveries(settings, aws, control, clock, matcher, count),
        digests=digests,
        public_keys=public_keys,
    )
