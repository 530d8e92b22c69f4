"""A small, real notification matcher for the delivery tests: one EventBridge pattern (compiled
by chalicelib/pattern.py) per notification, indexed by project. The product's matcher (CTS rules
compiled into patterns, indexed by service type) replaces it in the app's wiring."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.notification_types import Target
from chalicelib.pattern import CompiledPattern, compile_pattern


@dataclass
class PatternMatcher:
    rules: dict[str, list[tuple[CompiledPattern, Target]]] = field(default_factory=dict)

    def add(self, target: Target, pattern: Mapping[str, Any]) -> Target:
        self.rules.setdefault(target.project_id, []).append((compile_pattern(pattern), target))
        return target

    def matches(self, project_id: str, trace: Mapping[str, Any]) -> list[Target]:
        return [t for p, t in self.rules.get(project_id, []) if p.matches(trace)]
