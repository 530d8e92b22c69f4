"""Builds the two stream deliveries (key event notifications, login audit) from settings and
boto3 clients; chalicelib/wiring.py calls it once per container."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.clock import MS_PER_SECOND, Clock
from chalicelib.config import Settings
from chalicelib.control import ControlTable
from chalicelib.delivery import (
    BatchResult,
    LambdaFunctions,
    NotificationPlanner,
    QueueDeadLetter,
    SentMarkers,
    SnsTopics,
    StreamDelivery,
    batch_response,
)
from chalicelib.login_audit import LoginAudit, LoginAuditConfig
from chalicelib.notification_types import Matcher

# Builds the matcher of the project's notifications from the control table.
MatcherFactory = Callable[[ControlTable, Clock], Matcher]
# A boto3 client for a service name, optionally in another region.
ClientFor = Callable[..., Any]

logger = logging.getLogger("opencts.delivery")

NOTIFICATIONS = "notifications"
LOGIN_AUDIT = "login_audit"


@dataclass(frozen=True)
class Deliveries:
    notifications: StreamDelivery | None  # None until a matcher is wired
    login_audit: StreamDelivery
    login_audit_config: LoginAuditConfig
    # (metric name, value): sends done, failed and dead-lettered per batch (observability.py).
    count: Callable[[str, int], None] = lambda name, value: None

    def notify(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """The stream handler of key event notifications: Lambda's partial batch response."""
        if self.notifications is None:
            logger.warning("no notification matcher is wired: %d records passed", len(records))
            return {"batchItemFailures": []}
        return self._counted("Notifications", self.notifications.process(records))

    def audit_logins(self, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return self._counted("LoginAlarms", self.login_audit.process(records))

    def _counted(self, prefix: str, result: BatchResult) -> dict[str, Any]:
        self.count(f"{prefix}Sent", result.sent)
        self.count(f"{prefix}Failed", result.send_failures)
        self.count(f"{prefix}DeadLettered", result.dead_lettered)
        return batch_response(result)


def build_deliveries(
    settings: Settings,
    aws: ClientFor,
    control: ControlTable,
    clock: Clock,
    matcher: Matcher | None,
    count: Callable[[str, int], None] = lambda name, value: None,
) -> Deliveries:
    dead_letter = QueueDeadLetter(aws("sqs"), settings.notify_dlq)

    def delivery(handler: str, planner: Any) -> StreamDelivery:
        return StreamDelivery(
            handler,
            planner,
            SentMarkers(control, clock, handler),
            dead_letter,
            clock,
            max_attempts=settings.notify_max_attempts,
            max_age_ms=settings.notify_max_age_seconds * MS_PER_SECOND,
        )

    notifications = None
    if matcher is not None:
        topics, functions = SnsTopics(aws("sns")), LambdaFunctions(aws("lambda"))
        planner = NotificationPlanner(matcher, topics, functions)
        notifications = delivery(NOTIFICATIONS, planner)
    config = LoginAuditConfig.from_env(dict(settings.login_audit_env), settings.region)
    config.log_problems()
    audit = LoginAudit(config, SnsTopics(aws("sns", config.region)))
    return Deliveries(notifications, delivery(LOGIN_AUDIT, audit), config, count)
