"""Targets: where experiments run. ``resolve_target`` turns a name or file into one."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import InvalidInput
from harness.targets.base import Target


def target_from_description(description: dict[str, Any]) -> Target:
    kind = description.get("kind")
    if kind == "lab":
        from harness.targets.lab import LabTarget

        return LabTarget.from_description(description)
    if kind == "kubernetes":
        from harness.targets.kubernetes import KubernetesTarget

        return KubernetesTarget.from_description(description)
    raise InvalidInput(f"unknown target kind {kind!r} (known: lab, kubernetes)")


def resolve_target(spec: str | None, lab_dir: str | None = None) -> Target:
    """``None``/``"lab"`` -> the local lab; a path -> a target file (YAML: kind: ...)."""
    if spec in (None, "", "lab"):
        from harness.targets.lab import LabTarget

        return LabTarget.open(lab_dir)
    path = Path(spec)
    if not path.exists():
        raise InvalidInput(f"target {spec!r}: neither 'lab' nor an existing target file")
    from harness.experiment.yamlsafe import load_document

    data, _ = load_document(path)
    if not isinstance(data, dict) or "kind" not in data:
        raise InvalidInput(f"{path}:1:1: a target file needs 'kind:' (lab or kubernetes)")
    data = {**data, "source": str(path)}
    return target_from_description(data)
