"""Amazon EventBridge event patterns: validation and matching, standard library only.

``compile_pattern(pattern)`` validates a pattern the way EventBridge does and returns a
``CompiledPattern`` whose ``matches(event)`` applies EventBridge's semantics and whose
``explain(event)`` says which field or condition failed (``None`` when the event matches).

Semantics (EventBridge "content filtering"):

* every field of the pattern must match (AND); within a leaf array any value matches (OR);
* a leaf is an array of exact values (string, number, ``null``, boolean) and/or operator objects:
  ``prefix``, ``suffix``, ``anything-but``, ``numeric``, ``exists``, ``cidr``, ``wildcard``,
  ``equals-ignore-case``; ``$or`` takes an array of at least two sub-patterns;
* when the event holds an array at a field, the field matches when any element matches;
* numbers compare numerically (``5`` matches ``5.0``), never a string (``"5"`` is not ``5``);
  ``decimal.Decimal`` values (DynamoDB) are normalised to ``int``/``float`` first;
* a missing field (or an empty array) matches only ``{"exists": false}``; ``anything-but`` never
  matches a missing field; a field present with ``null`` exists;
* ``exists`` applies to leaves: a field holding an object is not a leaf, so ``exists: true``
  does not match it and ``exists: false`` does.

Limits (documented in the report and enforced by ``compile_pattern``):

* ``MAX_PATTERN_BYTES``: 4,096 bytes of compact UTF-8 JSON (the ``EventPattern`` length limit of
  EventBridge's PutRule);
* ``MAX_DEPTH``: 10 nested field levels (top-level fields are level 1; ``$or`` adds no level);
* numeric operands within ``-5.0e9`` .. ``+5.0e9`` (EventBridge's documented range).

Validation follows EventBridge's engine (aws/event-ruler): empty objects and arrays are refused;
a numeric range gives its lower bound first and the lower bound must be below the upper one;
``=`` stands alone; an ``anything-but`` list holds only strings or only numbers; ``anything-but``
prefix/suffix must not be empty; a wildcard has no consecutive ``*`` and escapes only ``*`` and
``\\``; inside ``$or`` branches operator keywords cannot be field names.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

__all__ = [
    "MAX_DEPTH",
    "MAX_PATTERN_BYTES",
    "NUMERIC_LIMIT",
    "CompiledPattern",
    "PatternError",
    "compile_pattern",
    "normalise",
]

MAX_PATTERN_BYTES: Final = 4096
MAX_DEPTH: Final = 10
NUMERIC_LIMIT: Final = 5.0e9
OR_KEY: Final = "$or"

_RESERVED_IN_OR: Final = frozenset(
    {"exactly", "equals-ignore-case", "prefix", "suffix", "anything-but", "exists", "wildcard"}
    | {"numeric", "cidr", "=", "<", "<=", ">", ">="}
)
_LOWER_OPS: Final = frozenset({">", ">="})
_UPPER_OPS: Final = frozenset({"<", "<="})


class PatternError(ValueError):
    """The pattern is not a valid EventBridge event pattern; the message says why."""


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()


def normalise(value: Any) -> Any:
    """Return ``value`` with every ``Decimal`` replaced by an ``int`` (if integral) or ``float``."""
    if isinstance(value, Decimal):
        if value.is_nan() or value.is_infinite():
            return float(value)
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, Mapping):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


# ----------------------------------------------------------------------------- leaf conditions


class _Condition:
    """One element of a leaf array. ``test`` receives a present scalar value."""

    matches_missing = False

    def test(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class _Exact(_Condition):
    value: Any

    def test(self, value: Any) -> bool:
        if self.value is None:
            return value is None
        if isinstance(self.value, bool):
            return isinstance(value, bool) and value is self.value
        if _is_number(self.value):
            return _is_number(value) and value == self.value
        return isinstance(value, str) and value == self.value

    def describe(self) -> str:
        return _show(self.value)


@dataclass(frozen=True)
class _Affix(_Condition):
    """`prefix` or `suffix` (op), optionally under `equals-ignore-case`."""

    op: str
    text: str
    ignore_case: bool = False

    def test(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        subject: str
        subject, text = value, self.text
        if self.ignore_case:
            subject, text = subject.casefold(), text.casefold()
        return subject.startswith(text) if self.op == "prefix" else subject.endswith(text)

    def describe(self) -> str:
        if self.ignore_case:
            return f'{{"{self.op}": {{"equals-ignore-case": {_show(self.text)}}}}}'
        return f'{{"{self.op}": {_show(self.text)}}}'


@dataclass(frozen=True)
class _IgnoreCase(_Condition):
    text: str

    def test(self, value: Any) -> bool:
        return isinstance(value, str) and value.casefold() == self.text.casefold()

    def describe(self) -> str:
        return f'{{"equals-ignore-case": {_show(self.text)}}}'


@dataclass(frozen=True)
class _Wildcard(_Condition):
    source: str
    regex: re.Pattern[str]

    def test(self, value: Any) -> bool:
        return isinstance(value, str) and self.regex.fullmatch(value) is not None

    def describe(self) -> str:
        return f'{{"wildcard": {_show(self.source)}}}'


@dataclass(frozen=True)
class _Numeric(_Condition):
    source: tuple[Any, ...]
    lower: float | None
    lower_inclusive: bool
    upper: float | None
    upper_inclusive: bool

    def test(self, value: Any) -> bool:
        if not _is_number(value) or not math.isfinite(value):
            return False
        if self.lower is not None and (
            value < self.lower or (value == self.lower and not self.lower_inclusive)
        ):
            return False
        return not (
            self.upper is not None
            and (value > self.upper or (value == self.upper and not self.upper_inclusive))
        )

    def describe(self) -> str:
        return f'{{"numeric": {_show(list(self.source))}}}'


@dataclass(frozen=True)
class _Exists(_Condition):
    present: bool

    @property
    def matches_missing(self) -> bool:  # type: ignore[override]
        return not self.present

    def test(self, value: Any) -> bool:
        return self.present

    def describe(self) -> str:
        return f'{{"exists": {_show(self.present)}}}'


@functools.lru_cache(maxsize=4096)
def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class _Cidr(_Condition):
    source: str
    network: ipaddress.IPv4Network | ipaddress.IPv6Network

    def test(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        address = _parse_ip(value)
        return (
            address is not None
            and address.version == self.network.version
            and address in self.network
        )

    def describe(self) -> str:
        return f'{{"cidr": {_show(self.source)}}}'


@dataclass(frozen=True)
class _AnythingBut(_Condition):
    """Matches any present value the inner conditions do not match."""

    source: Any
    excluded: tuple[_Condition, ...]
    # Derived: the excluded exact strings as a set, and the excluded operators (an exact number
    # never matches a string), so a string value is one set look-up plus the operators.
    strings: frozenset[str] = field(default=frozenset(), init=False, compare=False)
    operators: tuple[_Condition, ...] = field(default=(), init=False, compare=False)

    def __post_init__(self) -> None:
        strings = frozenset(
            c.value for c in self.excluded if isinstance(c, _Exact) and isinstance(c.value, str)
        )
        operators = tuple(c for c in self.excluded if not isinstance(c, _Exact))
        object.__setattr__(self, "strings", strings)
        object.__setattr__(self, "operators", operators)

    def test(self, value: Any) -> bool:
        if type(value) is str:
            if value in self.strings:
                return False
            return not any(c.test(value) for c in self.operators) if self.operators else True
        return not any(c.test(value) for c in self.excluded)

    def describe(self) -> str:
        return f'{{"anything-but": {_show(self.source)}}}'


# ----------------------------------------------------------------------------- compiled form


@dataclass(frozen=True)
class _Leaf:
    conditions: tuple[_Condition, ...]
    # Derived: the exact string values as a set, and the conditions a present value can match
    # besides them. A single string (the common case) is then one set look-up plus the operators.
    strings: frozenset[str] = frozenset()
    others: tuple[_Condition, ...] = ()
    matches_missing: bool = False

    def __post_init__(self) -> None:
        strings = frozenset(
            c.value for c in self.conditions if isinstance(c, _Exact) and isinstance(c.value, str)
        )
        others = tuple(
            c
            for c in self.conditions
            if not c.matches_missing and not (isinstance(c, _Exact) and isinstance(c.value, str))
        )
        object.__setattr__(self, "strings", strings)
        object.__setattr__(self, "others", others)
        object.__setattr__(self, "matches_missing", any(c.matches_missing for c in self.conditions))

    def describe(self) -> str:
        return "[" + ", ".join(c.describe() for c in self.conditions) + "]"


@dataclass(frozen=True)
class _Node:
    fields: tuple[tuple[str, _Leaf | _Node], ...]
    alternatives: tuple[_Node, ...]  # the $or branches; empty when there is no $or


def _leaf_values(value: Any) -> list[Any]:
    """Scalars found at a field: arrays are flattened, objects are not leaves."""
    if value is _MISSING or isinstance(value, Mapping):
        return []
    if isinstance(value, list | tuple):
        out: list[Any] = []
        for item in value:
            out.extend(_leaf_values(item))
        return out
    if isinstance(value, Decimal):
        return [normalise(value)]
    return [value]


def _match_leaf(leaf: _Leaf, value: Any) -> bool:
    if type(value) is str:
        if value in leaf.strings:
            return True
        for condition in leaf.others:  # noqa: SIM110 - a generator costs more on this hot path
            if condition.test(value):
                return True
        return False
    values = _leaf_values(value)
    if not values:
        return leaf.matches_missing
    strings = leaf.strings
    if strings and any(isinstance(v, str) and v in strings for v in values):
        return True
    return any(condition.test(v) for condition in leaf.others for v in values)


def _match_node(node: _Node, event: Mapping[str, Any]) -> bool:
    for name, sub in node.fields:
        value = event.get(name, _MISSING)
        if isinstance(sub, _Leaf):
            if not _match_leaf(sub, value):
                return False
        else:
            objects = _objects(value) or [{}]
            if not any(_match_node(sub, obj) for obj in objects):
                return False
    return not node.alternatives or any(_match_node(a, event) for a in node.alternatives)


def _objects(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list | tuple):
        out: list[Mapping[str, Any]] = []
        for item in value:
            out.extend(_objects(item))
        return out
    return []


def _explain_leaf(path: str, leaf: _Leaf, value: Any) -> str | None:
    values = _leaf_values(value)
    if not values:
        if any(c.matches_missing for c in leaf.conditions):
            return None
        state = "is missing" if value is _MISSING else f"has no value to compare ({_show(value)})"
        return f"field {path!r} {state}; pattern requires {leaf.describe()}"
    for condition in leaf.conditions:
        if condition.matches_missing:
            continue
        if any(condition.test(v) for v in values):
            return None
    shown = _show(values[0]) if len(values) == 1 else _show(values)
    return f"field {path!r} value {shown} does not match {leaf.describe()}"


def _explain_node(node: _Node, event: Mapping[str, Any], prefix: str) -> str | None:
    for name, sub in node.fields:
        path = f"{prefix}{name}"
        value = event.get(name, _MISSING)
        if isinstance(sub, _Leaf):
            reason = _explain_leaf(path, sub, value)
        else:
            objects = _objects(value)
            if not objects:
                objects = [{}]
            reason = None
            for obj in objects:
                reason = _explain_node(sub, obj, f"{path}.")
                if reason is None:
                    break
        if reason is not None:
            return reason
    if node.alternatives:
        reasons: list[str] = []
        for alternative in node.alternatives:
            reason = _explain_node(alternative, event, prefix)
            if reason is None:
                return None
            reasons.append(reason)
        where = f" under {prefix[:-1]!r}" if prefix else ""
        return f"no $or alternative{where} matched: " + "; ".join(reasons)
    return None


class CompiledPattern:
    """A validated EventBridge event pattern, ready to match events."""

    __slots__ = ("_root", "source")

    def __init__(self, root: _Node, source: Mapping[str, Any]) -> None:
        self._root = root
        self.source = source

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` matches; ``Decimal`` numbers count as the numbers they hold."""
        # dict first: the ABC check of Mapping costs more than most matches.
        return (type(event) is dict or isinstance(event, Mapping)) and _match_node(
            self._root, event
        )

    def explain(self, event: Mapping[str, Any]) -> str | None:
        """``None`` when ``event`` matches, otherwise the first field or condition that failed."""
        if not isinstance(event, Mapping):
            return "event is not a JSON object"
        return _explain_node(self._root, event, "")

    def __repr__(self) -> str:
        return f"CompiledPattern({_show(self.source)})"


# ----------------------------------------------------------------------------- validation


def compile_pattern(
    pattern: Mapping[str, Any], *, max_bytes: int | None = MAX_PATTERN_BYTES
) -> CompiledPattern:
    """Validate ``pattern`` as EventBridge does; raise ``PatternError`` with the reason.

    ``max_bytes=None`` lifts the size limit, for patterns OpenCTS builds itself from a CTS rule
    (1,000 operations do not fit in 4 KB); a user's pattern always keeps the limit."""
    if not isinstance(pattern, Mapping):
        raise PatternError("event pattern must be a JSON object")
    try:
        pattern = normalise(pattern)
        encoded = json.dumps(pattern, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except RecursionError as exc:
        raise PatternError(
            f"event pattern is nested too deeply: at most {MAX_DEPTH} levels"
        ) from exc
    except (TypeError, ValueError) as exc:
        raise PatternError(f"event pattern is not valid JSON: {exc}") from exc
    size = len(encoded.encode("utf-8"))
    if max_bytes is not None and size > max_bytes:
        raise PatternError(f"event pattern is too large: {size} bytes, at most {max_bytes} allowed")
    if not pattern:
        raise PatternError("event pattern must not be empty")
    return CompiledPattern(_compile_node(pattern, "", 0), pattern)


def _compile_node(obj: Mapping[str, Any], prefix: str, depth: int) -> _Node:
    fields: list[tuple[str, _Leaf | _Node]] = []
    alternatives: list[_Node] = []
    for name, value in obj.items():
        if not isinstance(name, str):
            raise PatternError(f"field names must be strings, got {_show(name)}")
        path = f"{prefix}{name}"
        if name == OR_KEY:
            alternatives = _compile_or(value, prefix, depth)
            continue
        if depth + 1 > MAX_DEPTH:
            raise PatternError(
                f"event pattern is nested too deeply at {path!r}: at most {MAX_DEPTH} levels"
            )
        if isinstance(value, Mapping):
            if not value:
                raise PatternError(f"field {path!r}: object must not be empty")
            fields.append((name, _compile_node(value, f"{path}.", depth + 1)))
        elif isinstance(value, list):
            fields.append((name, _compile_leaf(value, path)))
        else:
            raise PatternError(
                f"field {path!r}: match values must be in an array, got {_show(value)}"
            )
    return _Node(tuple(fields), tuple(alternatives))


def _compile_or(value: Any, prefix: str, depth: int) -> list[_Node]:
    where = f" in {prefix[:-1]!r}" if prefix else ""
    if not isinstance(value, list) or len(value) < 2:
        raise PatternError(f"$or{where} must be an array of at least 2 objects")
    out: list[_Node] = []
    for item in value:
        if not isinstance(item, Mapping) or not item:
            raise PatternError(f"$or{where} must be an array of non-empty objects")
        for name in item:
            if name in _RESERVED_IN_OR:
                raise PatternError(
                    f"$or{where}: {_show(name)} is a reserved keyword and cannot be a field name"
                )
        out.append(_compile_node(item, prefix, depth))
    return out


def _compile_leaf(values: list[Any], path: str) -> _Leaf:
    if not values:
        raise PatternError(f"field {path!r}: empty arrays are not allowed")
    conditions: list[_Condition] = []
    for item in values:
        if isinstance(item, Mapping):
            conditions.append(_compile_operator(item, path))
        elif item is None or isinstance(item, str | bool) or _is_number(item):
            conditions.append(_Exact(item))
        else:
            raise PatternError(
                f"field {path!r}: match values must be strings, numbers, booleans, null "
                f"or operator objects, got {_show(item)}"
            )
    return _Leaf(tuple(conditions))


_OPERATORS: Final = (
    "prefix",
    "suffix",
    "anything-but",
    "numeric",
    "exists",
    "cidr",
    "wildcard",
    "equals-ignore-case",
)


def _compile_operator(obj: Mapping[str, Any], path: str) -> _Condition:
    if len(obj) != 1:
        raise PatternError(
            f"field {path!r}: an operator object must hold exactly one operator, "
            f"got {_show(list(obj))}"
        )
    ((op, operand),) = obj.items()
    if op == "prefix":
        return _compile_affix(operand, path, "prefix")
    if op == "suffix":
        return _compile_affix(operand, path, "suffix")
    if op == "equals-ignore-case":
        return _IgnoreCase(_string_operand(operand, path, op))
    if op == "wildcard":
        text = _string_operand(operand, path, op)
        return _Wildcard(text, _wildcard_regex(text, path))
    if op == "exists":
        if not isinstance(operand, bool):
            raise PatternError(f"field {path!r}: exists needs a boolean, got {_show(operand)}")
        return _Exists(operand)
    if op == "cidr":
        return _compile_cidr(operand, path)
    if op == "numeric":
        return _compile_numeric(operand, path)
    if op == "anything-but":
        return _compile_anything_but(operand, path)
    raise PatternError(
        f"field {path!r}: unknown operator {_show(op)}; expected one of {', '.join(_OPERATORS)}"
    )


def _string_operand(operand: Any, path: str, op: str) -> str:
    if not isinstance(operand, str):
        raise PatternError(f"field {path!r}: {op} needs a string, got {_show(operand)}")
    return operand


def _compile_affix(operand: Any, path: str, op: str) -> _Condition:
    if isinstance(operand, Mapping):
        if len(operand) != 1 or "equals-ignore-case" not in operand:
            raise PatternError(
                f'field {path!r}: {op} takes a string or {{"equals-ignore-case": string}}, '
                f"got {_show(operand)}"
            )
        return _Affix(
            op, _string_operand(operand["equals-ignore-case"], path, op), ignore_case=True
        )
    return _Affix(op, _string_operand(operand, path, op))


def _wildcard_regex(text: str, path: str) -> re.Pattern[str]:
    parts: list[str] = []
    i = 0
    previous_star = False
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1] not in "*\\":
                raise PatternError(
                    f"field {path!r}: wildcard has an invalid escape at position {i}; "
                    "only \\* and \\\\ are allowed"
                )
            parts.append(re.escape(text[i + 1]))
            previous_star = False
            i += 2
            continue
        if ch == "*":
            if previous_star:
                raise PatternError(
                    f"field {path!r}: wildcard has consecutive * characters at position {i}"
                )
            parts.append(".*")
            previous_star = True
        else:
            parts.append(re.escape(ch))
            previous_star = False
        i += 1
    return re.compile("".join(parts), re.DOTALL)


def _compile_cidr(operand: Any, path: str) -> _Cidr:
    if not isinstance(operand, str):
        raise PatternError(f"field {path!r}: cidr needs a string, got {_show(operand)}")
    if "/" not in operand:
        raise PatternError(f"field {path!r}: cidr {operand!r} is not a valid CIDR block")
    try:
        network = ipaddress.ip_network(operand.strip(), strict=False)
    except ValueError as exc:
        raise PatternError(
            f"field {path!r}: cidr {operand!r} is not a valid CIDR block ({exc})"
        ) from exc
    return _Cidr(operand, network)


def _number_operand(value: Any, path: str, op: str) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise PatternError(f"field {path!r}: {op} needs a number, got {_show(value)}")
    if abs(value) > NUMERIC_LIMIT:
        raise PatternError(
            f"field {path!r}: numeric value {_show(value)} is outside "
            f"-{NUMERIC_LIMIT:.1e}..+{NUMERIC_LIMIT:.1e}"
        )
    return float(value)


def _compile_numeric(operand: Any, path: str) -> _Numeric:
    if not isinstance(operand, list) or not operand or len(operand) % 2:
        raise PatternError(
            f"field {path!r}: numeric needs an array of operator/number pairs, got {_show(operand)}"
        )
    lower: float | None = None
    upper: float | None = None
    lower_inclusive = upper_inclusive = False
    equals: float | None = None
    for i in range(0, len(operand), 2):
        op, number = operand[i], operand[i + 1]
        if not isinstance(op, str) or op not in {"<", "<=", "=", ">", ">="}:
            raise PatternError(
                f"field {path!r}: unknown numeric operator {_show(op)}; "
                "expected one of <, <=, =, >, >="
            )
        value = _number_operand(number, path, "numeric")
        if op == "=":
            if len(operand) != 2:
                raise PatternError(f'field {path!r}: numeric "=" cannot be combined')
            equals = value
        elif op in _LOWER_OPS:
            if upper is not None:
                raise PatternError(f"field {path!r}: numeric range must give the lower bound first")
            if lower is not None:
                raise PatternError(f"field {path!r}: numeric has more than one lower bound")
            lower, lower_inclusive = value, op == ">="
        elif op in _UPPER_OPS:
            if upper is not None:
                raise PatternError(f"field {path!r}: numeric has more than one upper bound")
            if i > 0 and lower is None:
                raise PatternError(f"field {path!r}: numeric range must give the lower bound first")
            upper, upper_inclusive = value, op == "<="
    if equals is not None:
        return _Numeric(tuple(operand), equals, True, equals, True)
    if lower is not None and upper is not None and lower >= upper:
        raise PatternError(f"field {path!r}: numeric lower bound must be less than the upper bound")
    return _Numeric(tuple(operand), lower, lower_inclusive, upper, upper_inclusive)


def _compile_anything_but(operand: Any, path: str) -> _AnythingBut:
    excluded: list[_Condition] = []
    if isinstance(operand, str) or _is_number(operand):
        excluded.append(_Exact(operand))
    elif isinstance(operand, list):
        if not operand:
            raise PatternError(f"field {path!r}: anything-but list must not be empty")
        for item in operand:
            if not (isinstance(item, str) or _is_number(item)):
                raise PatternError(
                    f"field {path!r}: anything-but list may hold only strings and numbers, "
                    f"got {_show(item)}"
                )
            excluded.append(_Exact(item))
        if len({isinstance(item, str) for item in operand}) > 1:
            raise PatternError(
                f"field {path!r}: anything-but list must hold only strings or only numbers"
            )
    elif isinstance(operand, Mapping):
        if len(operand) != 1:
            raise PatternError(
                f"field {path!r}: anything-but object must hold exactly one operator"
            )
        ((op, inner),) = operand.items()
        if op in {"prefix", "suffix", "equals-ignore-case", "wildcard"}:
            texts = inner if isinstance(inner, list) else [inner]
            if not texts:
                raise PatternError(f"field {path!r}: anything-but {op} list must not be empty")
            for text in texts:
                s = _string_operand(text, path, f"anything-but {op}")
                if op == "wildcard":
                    excluded.append(_Wildcard(s, _wildcard_regex(s, path)))
                elif op == "equals-ignore-case":
                    excluded.append(_IgnoreCase(s))
                elif not s:
                    raise PatternError(f"field {path!r}: anything-but {op} must not be empty")
                else:
                    excluded.append(_Affix(op, s))
        else:
            raise PatternError(
                f"field {path!r}: anything-but does not support {_show(op)}; expected prefix, "
                "suffix, equals-ignore-case or wildcard"
            )
    else:
        raise PatternError(
            f"field {path!r}: anything-but needs a string, a number, a list of them or an "
            f"operator object, got {_show(operand)}"
        )
    return _AnythingBut(operand, tuple(excluded))
