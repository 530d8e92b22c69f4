"""Projects known to OpenCTS, their domain, and their write-shard plan.

A project is known once it is registered (the local stack and `opencts projects add` register
projects; enabling CTS with the `system` tracker does too). Traces for unknown projects are refused,
so a typo in a project id never creates a silent, unreadable pile of traces.

The shard plan is a list of (effective_from_ms, shard_count). A trace's shard is a function of its
trace id and the count in force at the trace's `time`; readers of a day query the largest count in
force at any moment of that day. A change takes effect a cache period plus the largest clock skew
after it is made (`set_shards`), so every container knows it before any trace it covers arrives:
a change of count never hides a trace, whichever way it goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.clock import MS_PER_DAY, Clock
from chalicelib.control import ControlTable
from chalicelib.errors import invalid_parameter, project_not_found
from chalicelib.model import MAX_FUTURE_SKEW_MS, check_project_id

CACHE_MS = 60_000
# Every registered project, one item each (read by the transfer cycle once a run).
PROJECTS_PK = "PROJECTS"
MAX_SHARDS = 64


@dataclass(frozen=True)
class Project:
    project_id: str
    domain_id: str
    shard_plan: tuple[tuple[int, int], ...] = ((0, 1),)

    def shards_at(self, time_ms: int) -> int:
        count = 1
        for since, n in self.shard_plan:
            if since <= time_ms:
                count = n
        return count

    def shards_for_day(self, day_start_ms: int) -> int:
        return self.shards_between(day_start_ms, day_start_ms + MS_PER_DAY)

    def shards_between(self, start_ms: int, end_ms: int) -> int:
        """The largest count in force at any moment of [start_ms, end_ms)."""
        day_start_ms, day_end = start_ms, end_ms
        best = 1
        for i, (since, n) in enumerate(self.shard_plan):
            until = self.shard_plan[i + 1][0] if i + 1 < len(self.shard_plan) else None
            if since < day_end and (until is None or until > day_start_ms):
                best = max(best, n)
        return best


@dataclass
class ProjectRegistry:
    table: ControlTable
    clock: Clock
    _cache: dict[str, tuple[int, Project | None]] = field(default_factory=dict)

    @staticmethod
    def _key(project_id: str) -> tuple[str, str]:
        return f"PROJECT#{project_id}", "META"

    def find(self, project_id: str) -> Project | None:
        now = self.clock.now_ms()
        cached = self._cache.get(project_id)
        if cached and now - cached[0] < CACHE_MS:
            return cached[1]
        item = self.table.get(*self._key(project_id))
        project = None
        if item:
            plan = tuple((int(a), int(b)) for a, b in item.get("shard_plan", [[0, 1]]))
            project = Project(project_id, str(item["domain_id"]), plan)
        self._cache[project_id] = (now, project)
        return project

    def require(self, project_id: str) -> Project:
        check_project_id(project_id)
        project = self.find(project_id)
        if project is None:
            raise project_not_found(project_id)
        return project

    def register(self, project_id: str, domain_id: str) -> Project:
        """Idempotent: registering a known project keeps its shard plan."""
        check_project_id(project_id)
        existing = self.table.get(*self._key(project_id))
        plan = existing.get("shard_plan", [[0, 1]]) if existing else [[0, 1]]
        pk, sk = self._key(project_id)
        self.table.put(
            {
                "pk": pk,
                "sk": sk,
                "domain_id": domain_id,
                "shard_plan": plan,
                "created_at": existing["created_at"] if existing else self.clock.now_ms(),
            }
        )
        self.table.put({"pk": f"DOMAIN#{domain_id}", "sk": f"PROJECT#{project_id}"})
        self.table.put({"pk": PROJECTS_PK, "sk": project_id, "domain_id": domain_id})
        self._cache.pop(project_id, None)
        return self.require(project_id)

    def set_shards(self, project_id: str, count: int) -> Project:
        if not 1 <= count <= MAX_SHARDS:
            raise invalid_parameter("count", f"must be between 1 and {MAX_SHARDS}")
        project = self.require(project_id)
        item = self.table.get(*self._key(project_id)) or {}
        plan = [list(p) for p in project.shard_plan]
        now = self.clock.now_ms()
        effective = now + CACHE_MS + MAX_FUTURE_SKEW_MS
        # Plans older than the retention no longer matter to any reader.
        plan = [
            p
            for i, p in enumerate(plan)
            if i + 1 == len(plan) or plan[i + 1][0] > now - 8 * MS_PER_DAY
        ]
        plan = [p for p in plan if p[0] < effective]
        plan.append([effective, count])
        item["shard_plan"] = plan
        self.table.put(item)
        self._cache.pop(project_id, None)
        return self.require(project_id)

    def domain_projects(self, domain_id: str) -> list[str]:
        return [i["sk"].removeprefix("PROJECT#") for i in self.table.query(f"DOMAIN#{domain_id}")]

    def project_ids(self) -> list[str]:
        """Every registered project (one Query), in id order."""
        return [str(i["sk"]) for i in self.table.query(PROJECTS_PK)]
