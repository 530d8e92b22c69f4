"""`.chalice/config.json` as the deployment's record: each stage's environment and the per-function
IAM policy files, updated in place (everything else in the file is kept as it is)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib import iam
from chalicelib.iam import FunctionSpec
from chalicelib.packaging import policy_files


def config_path(project_dir: Path) -> Path:
    return project_dir / ".chalice" / "config.json"


def read_config(project_dir: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(config_path(project_dir).read_text())
    return config


def write_json(path: Path, data: Any) -> bool:
    """Writes `data` as indented JSON; False (and no write) when the file already holds it."""
    text = json.dumps(data, indent=2) + "\n"
    if path.is_file() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return True


def update_environment(project_dir: Path, stage: str, values: Mapping[str, str]) -> bool:
    """Sets the stage's environment variables (creating the stage if needed)."""
    config = read_config(project_dir)
    stage_config = config.setdefault("stages", {}).setdefault(stage, {"autogen_policy": False})
    stage_config.setdefault("environment_variables", {}).update(values)
    return write_json(config_path(project_dir), config)


def sync_policies(
    project_dir: Path,
    functions: Sequence[FunctionSpec],
    stages: Sequence[str] | None = None,
    table: Mapping[str, tuple[iam.Grant, ...]] = iam.FUNCTION_GRANTS,
) -> list[Path]:
    """Writes every function's policy file for the stages (default: all of config.json) and
    points `stages.<stage>.lambda_functions.<function>.iam_policy_file` at it. Returns the files
    that changed."""
    config = read_config(project_dir)
    changed: list[Path] = []
    for stage in stages or list(config.get("stages", {})):
        stage_config = config["stages"][stage]
        env = stage_config.get("environment_variables", {})
        # No stage-wide policy: a function without its own file cannot be deployed.
        stage_config.pop("iam_policy_file", None)
        stage_config["autogen_policy"] = False
        per_function = stage_config.setdefault("lambda_functions", {})
        for function, (file_name, document) in zip(
            functions, policy_files(functions, stage, env, table).items(), strict=True
        ):
            per_function.setdefault(function.name, {})["iam_policy_file"] = file_name
            path = project_dir / ".chalice" / file_name
            if write_json(path, document):
                changed.append(path)
    if write_json(config_path(project_dir), config):
        changed.append(config_path(project_dir))
    return changed


def main() -> int:
    """`make policies`: regenerate every stage's policy files after app.py or chalicelib/iam.py
    changed."""
    from chalicelib.packaging import PROJECT_DIR, real_functions  # noqa: PLC0415

    for path in sync_policies(PROJECT_DIR, real_functions()):
        print(f"wrote {path.relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
