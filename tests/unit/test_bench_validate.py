"""The validator benchmark at a tiny size: one JSON line, both validators agree the chain is
valid (it raises otherwise), figures present."""

from __future__ import annotations

import json
import math

import pytest

import app as app_module
from bench import validate as validate_bench

ENV = (
    "OPENCTS_STAGE", "OPENCTS_DOMAIN_ID", "OPENCTS_AWS_ENDPOINT", "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION",
    "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ACCOUNT_ID_ENDPOINT_MODE",
    "POWERTOOLS_LOG_LEVEL",
)

pytestmark = pytest.mark.skipif(
    not validate_bench.AWSCLI.is_file(), reason="awscli v1 is not installed (run `make awscli`)"
)


def test_validate_bench_prints_its_figures(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The benchmark sets its environment: every name it touches is restored after the test.
    for name in ENV:
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    try:
        assert validate_bench.main(
            ["--hours", "2", "--files", "3", "--rounds", "1", "--s3-latency-ms", "5"]
        ) == 0
    finally:
        app_module.use_services(None)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["bench"] == "validate"
    assert (result["hours"], result["digests"], result["trace_files"]) == (2, 3, 3)
    for key in ("opencts_validate_s", "awscli_validate_logs_s", "ratio", "ratio_local"):
        assert isinstance(result[key], float)
        assert math.isfinite(result[key])
        assert result[key] > 0
    assert result["target_ratio_max"] == 0.5
    assert result["meets_target"] is (result["ratio"] <= 0.5)
