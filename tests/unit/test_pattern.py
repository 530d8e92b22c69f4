"""EventBridge event patterns: conformance corpus, Decimal normalisation, explain(), limits."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chalicelib.pattern import (
    MAX_DEPTH,
    MAX_PATTERN_BYTES,
    CompiledPattern,
    PatternError,
    compile_pattern,
    normalise,
)

CORPUS = json.loads(
    (Path(__file__).parent.parent / "fixtures" / "eventbridge_patterns.json").read_text("utf-8")
)
MATCH_CASES: list[dict[str, Any]] = CORPUS["matches"]
INVALID_CASES: list[dict[str, Any]] = CORPUS["invalid"]


def test_corpus_has_enough_cases() -> None:
    assert len(MATCH_CASES) >= 150
    assert len(INVALID_CASES) >= 30
    assert all(isinstance(c["matches"], bool) for c in MATCH_CASES)
    assert {c["matches"] for c in MATCH_CASES} == {True, False}


@pytest.mark.parametrize("case", MATCH_CASES, ids=[c["doc"] for c in MATCH_CASES])
def test_match_case(case: dict[str, Any]) -> None:
    compiled = compile_pattern(case["pattern"])
    assert compiled.matches(case["event"]) is case["matches"], case["doc"]
    reason = compiled.explain(case["event"])
    if case["matches"]:
        assert reason is None
    else:
        assert isinstance(reason, str)
        assert reason


@pytest.mark.parametrize("case", INVALID_CASES, ids=[c["doc"] for c in INVALID_CASES])
def test_invalid_case(case: dict[str, Any]) -> None:
    with pytest.raises(PatternError) as info:
        compile_pattern(case["pattern"])
    assert case["reason_contains"] in str(info.value), str(info.value)


def test_pattern_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown operator"):
        compile_pattern({"a": [{"regex": "x"}]})


# ---------------------------------------------------------------------- Decimal normalisation


def test_normalise_turns_decimals_into_numbers() -> None:
    value = normalise({"a": Decimal(5), "b": [Decimal("2.5"), Decimal("1E+2")], "c": "x"})
    assert value == {"a": 5, "b": [2.5, 100], "c": "x"}
    assert isinstance(value["a"], int)
    assert isinstance(value["b"][0], float)
    assert isinstance(value["b"][1], int)


def test_normalise_keeps_other_values() -> None:
    assert normalise([True, None, "1", 1.5, (Decimal("3.0"),)]) == [True, None, "1", 1.5, [3]]
    assert normalise(Decimal("5.000")) == 5
    assert isinstance(normalise(Decimal("5.000")), int)


def test_dynamodb_decimals_match_exact_numbers() -> None:
    compiled = compile_pattern({"detail": {"code": [403], "ratio": [0.5]}})
    assert compiled.matches({"detail": {"code": Decimal(403), "ratio": Decimal("0.50")}})
    assert not compiled.matches({"detail": {"code": Decimal(404), "ratio": Decimal("0.5")}})


def test_dynamodb_decimals_match_numeric_and_anything_but() -> None:
    numeric = compile_pattern({"size": [{"numeric": [">", 10, "<=", 20.5]}]})
    assert numeric.matches({"size": Decimal("20.5")})
    assert not numeric.matches({"size": Decimal("20.51")})
    assert not numeric.matches({"size": Decimal(10)})
    anything_but = compile_pattern({"size": [{"anything-but": [1, 2]}]})
    assert not anything_but.matches({"size": Decimal("2.0")})
    assert anything_but.matches({"size": Decimal(3)})


def test_decimal_fractions_compare_as_their_json_numbers() -> None:
    # Decimal("0.1") != 0.1 in Python; DynamoDB's 0.1 must still match the pattern's 0.1.
    compiled = compile_pattern({"r": [0.1], "s": [{"numeric": ["=", 0.3]}]})
    event = {"r": Decimal("0.1"), "s": Decimal("0.3")}
    assert compiled.matches(event)
    assert compiled.explain(event) is None
    assert event == {"r": Decimal("0.1"), "s": Decimal("0.3")}  # the event is not modified


def test_decimal_in_pattern_and_arrays() -> None:
    compiled = compile_pattern({"n": [Decimal(7)]})
    assert compiled.matches({"n": [Decimal(1), Decimal("7.0")]})
    assert not compiled.matches({"n": "7"})


def test_decimal_is_not_a_string_or_boolean() -> None:
    assert not compile_pattern({"n": ["5"]}).matches({"n": Decimal(5)})
    assert not compile_pattern({"n": [True]}).matches({"n": Decimal(1)})


# ---------------------------------------------------------------------- explain()


def test_explain_none_when_matched() -> None:
    compiled = compile_pattern({"source": ["aws.ec2"]})
    assert compiled.explain({"source": "aws.ec2"}) is None


def test_explain_names_missing_field() -> None:
    reason = compile_pattern({"detail": {"state": ["running"]}}).explain({"detail": {}})
    assert reason is not None
    assert "'detail.state'" in reason
    assert "missing" in reason


def test_explain_names_value_and_condition() -> None:
    reason = compile_pattern({"detail": {"state": [{"prefix": "run"}, "stopped"]}}).explain(
        {"detail": {"state": "terminated"}}
    )
    assert reason == (
        """field 'detail.state' value "terminated" does not match [{"prefix": "run"}, "stopped"]"""
    )


def test_explain_reports_first_failing_field() -> None:
    compiled = compile_pattern({"source": ["aws.ec2"], "region": ["eu-west-1"]})
    reason = compiled.explain({"source": "aws.ec2", "region": "us-east-1"})
    assert reason is not None
    assert "'region'" in reason
    assert "us-east-1" in reason


def test_explain_or_lists_every_branch() -> None:
    compiled = compile_pattern({"$or": [{"a": ["1"]}, {"b": [{"numeric": [">", 3]}]}]})
    reason = compiled.explain({"a": "2", "b": 1})
    assert reason is not None
    assert reason.startswith("no $or alternative matched")
    assert "'a'" in reason
    assert "'b'" in reason
    assert "numeric" in reason


def test_explain_nested_or_names_parent() -> None:
    compiled = compile_pattern({"detail": {"$or": [{"a": ["1"]}, {"b": ["2"]}]}})
    reason = compiled.explain({"detail": {"a": "3"}})
    assert reason is not None
    assert "under 'detail'" in reason
    assert "'detail.b' is missing" in reason


def test_explain_object_where_leaf_expected() -> None:
    reason = compile_pattern({"detail": ["x"]}).explain({"detail": {"a": 1}})
    assert reason is not None
    assert "'detail'" in reason
    assert "no value" in reason


def test_explain_exists_false() -> None:
    reason = compile_pattern({"error": [{"exists": False}]}).explain({"error": "AccessDenied"})
    assert reason == 'field \'error\' value "AccessDenied" does not match [{"exists": false}]'


def test_explain_non_object_event() -> None:
    compiled = compile_pattern({"a": ["b"]})
    assert compiled.explain(["a"]) == "event is not a JSON object"  # type: ignore[arg-type]
    assert not compiled.matches("a")  # type: ignore[arg-type]


def test_compiled_pattern_keeps_its_source() -> None:
    compiled = compile_pattern({"a": ["b"]})
    assert isinstance(compiled, CompiledPattern)
    assert compiled.source == {"a": ["b"]}
    assert "CompiledPattern" in repr(compiled)


# ---------------------------------------------------------------------- limits


def _nested(depth: int) -> dict[str, Any]:
    pattern: dict[str, Any] = {"leaf": ["x"]}
    for i in range(depth - 1):
        pattern = {f"l{i}": pattern}
    return pattern


def _event(depth: int) -> dict[str, Any]:
    event: dict[str, Any] = {"leaf": "x"}
    for i in range(depth - 1):
        event = {f"l{i}": event}
    return event


def test_depth_at_limit_is_accepted() -> None:
    compiled = compile_pattern(_nested(MAX_DEPTH))
    assert compiled.matches(_event(MAX_DEPTH))


def test_depth_past_limit_is_refused() -> None:
    with pytest.raises(PatternError, match="too deeply"):
        compile_pattern(_nested(MAX_DEPTH + 1))


def test_pathologically_deep_pattern_is_refused_cleanly() -> None:
    with pytest.raises(PatternError, match="too deeply"):
        compile_pattern(_nested(100_000))


def test_or_adds_no_depth() -> None:
    inner = _nested(MAX_DEPTH - 1)
    compile_pattern({"top": {"$or": [inner, {"other": ["y"]}]}})
    with pytest.raises(PatternError, match="too deeply"):
        compile_pattern({"top": {"$or": [_nested(MAX_DEPTH), {"other": ["y"]}]}})


def _sized(size: int) -> dict[str, Any]:
    overhead = len(json.dumps({"s": [""]}, separators=(",", ":")))
    return {"s": ["x" * (size - overhead)]}


def test_size_at_limit_is_accepted() -> None:
    pattern = _sized(MAX_PATTERN_BYTES)
    assert len(json.dumps(pattern, separators=(",", ":"))) == MAX_PATTERN_BYTES
    compile_pattern(pattern)


def test_size_past_limit_is_refused() -> None:
    with pytest.raises(PatternError, match="too large"):
        compile_pattern(_sized(MAX_PATTERN_BYTES + 1))


def test_size_counts_utf8_bytes() -> None:
    with pytest.raises(PatternError, match="too large"):
        compile_pattern({"s": ["\u00e9" * (MAX_PATTERN_BYTES // 2)]})


def test_numeric_range_limits() -> None:
    compile_pattern({"n": [{"numeric": [">=", -5.0e9, "<=", 5.0e9]}]})
    with pytest.raises(PatternError, match="outside"):
        compile_pattern({"n": [{"numeric": [">=", -5.0e9 - 1]}]})
    with pytest.raises(PatternError, match="outside"):
        compile_pattern({"n": [{"numeric": ["<", 5.0e9 + 1]}]})


def test_non_finite_numbers_refused() -> None:
    with pytest.raises(PatternError):
        compile_pattern({"n": [float("nan")]})
    with pytest.raises(PatternError):
        compile_pattern({"n": [{"numeric": [">", float("inf")]}]})


def test_non_string_keys_refused() -> None:
    with pytest.raises(PatternError, match="field names"):
        compile_pattern({1: ["x"]})  # type: ignore[dict-item]
