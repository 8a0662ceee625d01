"""Targets: where experiments run. ``resolve_target`` turns a name or file into one."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import InvalidInput
if TYPE_CHECKING:
    from harness.targets.base import Target


#: target kind -> "module:Class" (a new target is one package under harness/targets/)
TARGET_KINDS = {
    "lab": "harness.targets.lab:LabTarget",
    "kubernetes": "harness.targets.kubernetes:KubernetesTarget",
}


def target_class(kind: str | None) -> type[Target]:
    if kind not in TARGET_KINDS:
        raise InvalidInput(f"unknown target kind {kind!r} (known: {', '.join(TARGET_KINDS)})")
    import importlib

    module, cls = TARGET_KINDS[kind].split(":")
    return getattr(importlib.import_module(module), cls)


def target_from_description(description: dict[str, Any]) -> Target:
    return target_class(description.get("kind")).from_description(description)


def target_kind_of(spec: str | None) -> str:
    """The kind a target spec names, without connecting to anything (for markers)."""
    if spec in (None, "", "lab"):
        return "lab"
    from harness.experiment.yamlsafe import load_document

    path = Path(spec)
    if not path.exists():
        raise InvalidInput(f"target {spec!r}: neither 'lab' nor an existing target file")
    data, _ = load_document(path)
    return str(data.get("kind")) if isinstance(data, dict) else ""


def target_gone(description: dict[str, Any]) -> str | None:
    """Why the target a fault was journaled against no longer exists (so the fault
    died with it and there is nothing left to revert), or None when it may still exist.

    Only what is certain counts: a lab whose run directory is gone or that is fully
    down (no process, namespace, bridge or rule of it left), and a local KWOK test-bed
    cluster whose kubeconfig was deleted with it. A real cluster is never assumed gone:
    a missing kubeconfig there needs a person (``harness cleanup --forget``)."""
    kind = description.get("kind")
    if kind == "lab":
        from harness.lab.lab import Lab

        run_dir = Path(description.get("run_dir") or "")
        if not (run_dir / "lab.json").exists():
            return f"the lab at {run_dir} no longer exists"
        try:
            left = Lab.open(run_dir).leftovers()
        except Exception:  # noqa: BLE001 - unsure means not gone
            return None
        return None if left else f"the lab at {run_dir} is down (nothing it started is left)"
    if kind == "kubernetes":
        kubeconfig = str(description.get("kubeconfig") or "")
        if kubeconfig and "/.kwok/clusters/" in kubeconfig and not Path(kubeconfig).exists():
            return f"the local test-bed cluster of {kubeconfig} was deleted"
    return None


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
