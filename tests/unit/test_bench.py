"""The benchmarks run at a tiny size: one JSON line with the documented keys and sane figures."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from bench import ingest as ingest_bench
from bench import matching
from bench import query_amplification as query_bench
from bench import trace_files as trace_files_bench
from bench.common import (
    DynamoCalls,
    TraceFactory,
    build_vocabulary,
    configure_aws_env,
    fast_moto,
    make_stack,
)
from chalicelib.clock import FixedClock
from chalicelib.dynamo import to_item

_ENV = (
    "AWS_ACCOUNT_ID_ENDPOINT_MODE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECURITY_TOKEN",
    "AWS_SESSION_TOKEN",
)
FILTER_KINDS = {
    "trace_id",
    "resource_id",
    "trace_name",
    "user",
    "service_type+resource_type",
    "window",
}


@pytest.fixture(autouse=True)
def _restore_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmarks set fake credentials in os.environ; put the test process's back after."""
    for name in _ENV:
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)


def _one_json_line(out: str) -> dict[str, object]:
    lines = out.splitlines()
    assert len(lines) == 1, lines
    parsed = json.loads(lines[0])
    assert isinstance(parsed, dict)
    return parsed


def _finite_positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_ingest_bench_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert ingest_bench.main(["--traces", "400", "--rounds", "2", "--batch", "100"]) == 0
    result = _one_json_line(capsys.readouterr().out)

    assert result["bench"] == "ingest"
    assert result["traces"] == 400
    for key in ("ours_traces_per_s", "raw_traces_per_s", "ratio", "client_ratio"):
        assert _finite_positive(result[key]), key
    assert result["target_ratio_max"] == 1.3
    assert result["meets_target"] is (result["ratio"] <= 1.3)  # type: ignore[operator]
    # ratio is ours' time over raw's: the inverse of the rates' ratio.
    rates = result["raw_traces_per_s"] / result["ours_traces_per_s"]  # type: ignore[operator]
    assert result["ratio"] == pytest.approx(rates, rel=0.01)
    calls = result["calls_per_batch"]
    assert isinstance(calls, dict)
    # 100 traces a batch: one BatchGetItem for the duplicate check, 4 BatchWriteItem of 25.
    assert calls["ours"]["BatchGetItem"] == 1
    assert calls["ours"]["BatchWriteItem"] >= 4
    assert calls["raw"] == {"BatchWriteItem": 4}


def test_query_bench_prints_its_ratios(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--traces", "150", "--values", "2", "--max-rows", "12", "--jobs", "1"]
    assert query_bench.main(args) == 0
    result = _one_json_line(capsys.readouterr().out)

    assert result["bench"] == "query_amplification"
    assert result["traces"] == 150
    assert result["projects"] == 3
    assert result["scans"] == 0
    assert result["targets"] == {"selective_max": 2, "window_max": 1.2}
    for key in ("by_filter", "by_filter_4_shards"):
        ratios = result[key]
        assert isinstance(ratios, dict)
        assert set(ratios) == FILTER_KINDS
        # DynamoDB reads at least every item it returns.
        assert all(isinstance(r, float | int) and 1 <= r < 50 for r in ratios.values()), ratios
    assert isinstance(result["meets_targets"], bool)
    assert result["checks"] == {"row_mismatches": 0, "scanned_mismatches": 0, "failures": []}


def _figures(result: dict[str, Any]) -> dict[str, Any]:
    """A query benchmark result without its timings and labels."""
    for key in ("seconds", "moto", "ingest"):
        result.pop(key)
    for detail in result["detail_by_shards"].values():
        for timing in ("pages_per_s", "ingest_s", "query_s"):
            detail.pop(timing)
    return result


def test_fast_moto_changes_no_figure() -> None:
    """The bench speed-ups of moto are exact: same rows, same items read, same calls."""
    fast, stock = (
        _figures(query_bench.run(80, 2, 12, shard_counts=(4,), stock_moto=stock))
        for stock in (False, True)
    )
    assert fast == stock


def test_both_ingest_paths_store_the_same_items() -> None:
    store, report = (
        _figures(query_bench.run(80, 2, 12, shard_counts=(2,), ingest_path=path))
        for path in ("store", "report")
    )
    assert store == report


def test_fast_moto_keeps_the_item_size_limit() -> None:
    configure_aws_env()
    with mock_aws(), fast_moto():
        stack = make_stack(FixedClock(0))
        calls = DynamoCalls().attach(stack.client)
        item = TraceFactory(random.Random(1), build_vocabulary(random.Random(1))).trace(1)
        item["pk"] = "p|big"
        item["message"] = "x" * 410_000
        with pytest.raises(stack.client.exceptions.ClientError, match="size"):
            stack.client.put_item(TableName=stack.traces_table, Item=to_item(item))
        assert calls.calls == {"PutItem": 1}


def test_matching_bench_prints_its_rates(capsys: pytest.CaptureFixture[str]) -> None:
    """The product's matcher over notifications created through the service; 150 notifications
    take two projects (the quota is 100), which also runs the one-project figure."""
    assert matching.main(["--traces", "300", "--counts", "1,100,150", "--moto-budget", "0.2"]) == 0
    result = _one_json_line(capsys.readouterr().out)
    assert result["bench"] == "matching"
    by_count = result["by_notifications"]
    assert isinstance(by_count, dict)
    assert set(by_count) == {"1", "100", "150"}
    for figures in by_count.values():
        for key in ("ours_traces_per_s", "moto_traces_per_s", "ratio"):
            assert _finite_positive(figures[key]), key
    assert by_count["100"]["projects"] == 1
    assert by_count["100"]["matches_per_trace"] > 0
    assert by_count["150"]["projects"] == 2
    for key in ("one_project_traces_per_s", "one_project_moto_traces_per_s", "one_project_ratio"):
        assert _finite_positive(by_count["150"][key]), key
    assert "one_project_traces_per_s" not in by_count["100"]
    assert result["targets_traces_per_s"] == {"100": 50_000, "1000": 20_000}
    assert result["mismatches"] == 0  # ours and moto's matcher agree on every trace both saw


def test_notify_latency_bench_runs_on_the_local_stack() -> None:
    """In a child process: the local stack points the environment at its embedded AWS."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(root / "bench" / "notify_latency.py"), "--samples", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = _one_json_line(done.stdout)
    assert result["bench"] == "notify_latency"
    assert result["samples"] == 2
    assert _finite_positive(result["median_s"])
    assert result["meets_target"] is (result["median_s"] < 2.0)  # type: ignore[operator]


def test_trace_files_bench_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert trace_files_bench.main(["--traces", "300", "--rounds", "2"]) == 0
    result = _one_json_line(capsys.readouterr().out)

    assert result["bench"] == "trace_files"
    assert result["traces"] == 300
    for key in ("ours_traces_per_s", "raw_traces_per_s", "ratio", "ours_bytes", "raw_bytes"):
        assert _finite_positive(result[key]), key
    assert result["target_ratio_min"] == 0.7
    assert result["meets_target"] is (result["ratio"] >= 0.7)  # type: ignore[operator]
    # One file per service seen, every trace in exactly one of them.
    batch = trace_files_bench.stored_traces(300, trace_files_bench.DEFAULT_SEED)
    assert result["files"] == len({t["service_type"] for t in batch})
    files = trace_files_bench.build_files(batch)
    assert sorted(i for f in files for i in f.trace_ids) == sorted(t["trace_id"] for t in batch)
