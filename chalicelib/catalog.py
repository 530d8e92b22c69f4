"""What has been seen: resource types per domain (ListTraceResources), operators of the last 30
days per project (ListUserResources) and operations per project (ListOperations).

Ingest records them as it stores traces. A container remembers what it wrote and skips rewriting
it: resource types and operations never change once written, and a user's `last_seen` is refreshed
at most daily, which is what a 30-day list needs. So the hot ingest path adds few writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.clock import MS_PER_DAY
from chalicelib.control import ControlTable, Item
from chalicelib.model import Trace

USER_WINDOW_MS = 30 * MS_PER_DAY
USER_REFRESH_MS = MS_PER_DAY
SEP = "|"


@dataclass
class Catalog:
    table: ControlTable
    _written: dict[tuple[str, str], int] = field(default_factory=dict)

    def record(self, domain_id: str, project_id: str, traces: Iterable[Trace], now_ms: int) -> None:
        wanted: dict[tuple[str, str], Item] = {}
        for t in traces:
            service, rtype = t["service_type"], t["resource_type"]
            pk = f"RES#{domain_id}"
            wanted[(pk, f"{service}{SEP}{rtype}")] = {
                "service_type": service,
                "resource_type": rtype,
            }
            pk = f"OPS#{project_id}"
            wanted[(pk, f"{service}{SEP}{rtype}{SEP}{t['trace_name']}")] = {
                "service_type": service,
                "resource_type": rtype,
                "trace_name": t["trace_name"],
            }
            user = t.get("user") or {}
            name = user.get("name") or user.get("id")
            if name:
                wanted[(f"USER#{project_id}", name)] = {
                    "id": user.get("id", ""),
                    "name": name,
                    "last_seen": now_ms,
                    "expires_at": (now_ms + USER_WINDOW_MS) // 1000,
                }
        fresh = [
            {"pk": pk, "sk": sk, **attrs}
            for (pk, sk), attrs in wanted.items()
            if self._stale((pk, sk), now_ms)
        ]
        if fresh:
            self.table.put_many(fresh)
            for item in fresh:
                self._written[(item["pk"], item["sk"])] = now_ms

    def _stale(self, key: tuple[str, str], now_ms: int) -> bool:
        written = self._written.get(key)
        if written is None:
            return True
        return key[0].startswith("USER#") and now_ms - written >= USER_REFRESH_MS

    def resources(self, domain_id: str) -> list[dict[str, Any]]:
        by_service: dict[str, list[str]] = {}
        for item in self.table.query(f"RES#{domain_id}"):
            by_service.setdefault(item["service_type"], []).append(item["resource_type"])
        return [{"service_type": s, "resource": sorted(r)} for s, r in sorted(by_service.items())]

    def users(self, project_id: str, now_ms: int) -> list[dict[str, str]]:
        since = now_ms - USER_WINDOW_MS
        return [
            {"id": i.get("id", ""), "name": i["name"]}
            for i in self.table.query(f"USER#{project_id}")
            if int(i.get("last_seen", 0)) >= since
        ]

    def operations(
        self, project_id: str, service_type: str | None, resource_type: str | None
    ) -> list[dict[str, Any]]:
        prefix = ""
        if service_type:
            prefix = f"{service_type}{SEP}" + (f"{resource_type}{SEP}" if resource_type else "")
        grouped: dict[tuple[str, str], list[str]] = {}
        for item in self.table.query(f"OPS#{project_id}", prefix):
            if resource_type and item["resource_type"] != resource_type:
                continue
            key = (item["service_type"], item["resource_type"])
            grouped.setdefault(key, []).append(item["trace_name"])
        return [
            {"service_type": s, "resource_type": r, "operation_list": sorted(ops)}
            for (s, r), ops in sorted(grouped.items())
        ]
