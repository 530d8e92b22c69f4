"""What the notification matcher hands to delivery: shared by the rules and the delivery code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Target:
    """One enabled notification that matched a trace, and where to send it."""

    project_id: str
    notification_id: str
    notification_name: str
    notification_type: str  # "smn" (SNS topic) or "fun" (Lambda function)
    topic_id: str  # the SNS topic ARN or the Lambda function ARN


class Matcher(Protocol):
    def matches(self, project_id: str, trace: Mapping[str, Any]) -> list[Target]:
        """The enabled notifications of `project_id` that `trace` (a stored trace) matches."""
        ...
