"""The guides of docs/guides run as written: each `$ ` command of their ```console blocks runs in
order, from a work directory laid out as the repository root (`docs/`, `.venv/bin/opencts`,
`.venv/bin/python`, `.opencts/local.json`), against one local stack started as a process
(`python -m chalicelib.local --fast`), and prints what the guide shows under it.

The guides' convention (docs/guides/README.md): the lines under a command, up to the next command
or the end of the block, are its output; `…` stands for what differs between runs, a line holding
only `…` for any number of lines; whitespace runs compare equal (tables are aligned to their
widest cell). Every command must succeed (exit 0). Headless and bounded: no standard input, each
command has a deadline, the module runs in well under 90 s.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.test_local_stack import REPO, environment, start_stack, wait_until_ready

pytestmark = pytest.mark.e2e

GUIDES = REPO / "docs" / "guides"
COMMAND_SECONDS = 30
ELLIPSIS = "…"
BLOCK_RE = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class Step:
    command: str
    expected: tuple[str, ...]


def steps(markdown: str) -> list[Step]:
    found: list[Step] = []
    for block in BLOCK_RE.findall(markdown):
        command: str | None = None
        expected: list[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    found.append(Step(command, tuple(expected)))
                command, expected = line[2:], []
            elif command is not None and line.strip():
                expected.append(line)
        if command is not None:
            found.append(Step(command, tuple(expected)))
    return found


def _normal(line: str) -> str:
    return " ".join(line.split())


def _pattern(expected: str) -> re.Pattern[str] | None:
    """None for a line of only `…` (any number of lines)."""
    text = _normal(expected)
    if text == ELLIPSIS:
        return None
    return re.compile(".*".join(re.escape(part) for part in text.split(ELLIPSIS)))


def output_matches(expected: tuple[str, ...], actual: list[str]) -> bool:
    patterns = [_pattern(e) for e in expected]
    lines = [_normal(a) for a in actual if a.strip()]
    # can[i][j]: patterns[i:] match lines[j:]
    can = [[False] * (len(lines) + 1) for _ in range(len(patterns) + 1)]
    can[len(patterns)][len(lines)] = True
    for i in range(len(patterns) - 1, -1, -1):
        for j in range(len(lines), -1, -1):
            pattern = patterns[i]
            if pattern is None:
                can[i][j] = can[i + 1][j] or (j < len(lines) and can[i][j + 1])
            else:
                here = j < len(lines) and bool(pattern.fullmatch(lines[j]))
                can[i][j] = here and can[i + 1][j + 1]
    return can[0][0]


def test_the_matcher_follows_the_convention() -> None:
    # Given an expected block with a varying time, a wildcard line and aligned columns
    expected = ("… createVolume  normal", "…", "(3 traces)")
    # Then spacing and the elided lines do not matter, but every shown line must be there
    lines = ["2026-11-20T10:00:00Z createVolume normal", "x", "y", "(3 traces)"]
    assert output_matches(expected, lines)
    assert output_matches(expected, ["T createVolume  normal", "(3 traces)"])
    assert not output_matches(expected, ["T createVolume warning", "(3 traces)"])
    assert not output_matches(expected, ["T createVolume normal", "(4 traces)"])
    assert not output_matches(("(1 trace)",), ["(1 trace)", "an extra line"])


def guide_files() -> list[Path]:
    return sorted(GUIDES.glob("[0-9]-*.md"))


def test_every_guide_has_commands_with_expected_output() -> None:
    assert len(guide_files()) == 5
    for guide in guide_files():
        found = steps(guide.read_text(encoding="utf-8"))
        assert len(found) >= 3, guide.name
        assert all(step.expected for step in found), guide.name


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The repository root as the guides see it, with the stack's .opencts/local.json."""
    work = tmp_path_factory.mktemp("guides")
    (work / "docs").symlink_to(REPO / "docs")
    bin_dir = work / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, argv in (("opencts", "-m chalicelib.cli"), ("python", "")):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" {argv} "$@"\n')
        script.chmod(0o755)
    process = start_stack(work, "--api-port", "0", "--aws-port", "0")
    try:
        wait_until_ready(process, work / ".opencts" / "local.json")
        yield work
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


@pytest.mark.parametrize("guide", guide_files(), ids=lambda p: p.stem)
def test_the_guide_runs_as_written(workdir: Path, guide: Path) -> None:
    for step in steps(guide.read_text(encoding="utf-8")):
        # When the command runs as the reader runs it (a shell, from the repository root)
        done = subprocess.run(
            ["/bin/bash", "-o", "pipefail", "-c", step.command],
            cwd=workdir,
            env=environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_SECONDS,
            check=False,
        )
        # Then it succeeds and prints what the guide shows
        shown = "\n".join(step.expected)
        assert done.returncode == 0, f"{guide.name}: $ {step.command}\n{done.stdout}"
        assert output_matches(step.expected, done.stdout.splitlines()), (
            f"{guide.name}: $ {step.command}\nexpected:\n{shown}\ngot:\n{done.stdout}"
        )
