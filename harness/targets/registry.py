"""One way to add a fault or a check to a target: a decorator in its own module.

    # harness/targets/lab/faults/pod_kill.py
    @registry.fault("lab")
    class LabPodKill(Fault):
        kind = "pod-kill"          # a name of the catalogue (harness.catalogue)

A target's implementations are the modules of its ``faults/`` and ``checks/`` packages
(``harness/targets/<target>/faults/*.py``), imported the first time the target is asked
for one. Other packages add theirs through the ``resilience_harness.plugins`` entry
point, as pytest plugins and Chaos Toolkit extensions do: each entry point names a
module that is imported once; it registers its classes with these decorators and its
catalogue entries with :func:`harness.catalogue.add_fault_kind` /
:func:`~harness.catalogue.add_check_kind`.

    [project.entry-points."resilience_harness.plugins"]
    disk-fill = "my_company_chaos.disk_fill"
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
from importlib.metadata import entry_points
from typing import Callable, TypeVar

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "resilience_harness.plugins"
T = TypeVar("T", bound=type)

_IMPL: dict[tuple[str, str], dict[str, type]] = {}  # (target kind, "fault"|"check") -> kind -> class
_LOADED: set[str] = set()
_PLUGINS_LOADED = False
#: plugins that failed to import: shown by `harness faults`, never silently dropped
PLUGIN_ERRORS: dict[str, str] = {}


def _register(target: str, what: str) -> Callable[[T], T]:
    def deco(cls: T) -> T:
        kind = getattr(cls, "kind", None)
        if not kind:
            raise TypeError(f"{cls.__name__} has no 'kind' (the catalogue name it implements)")
        table = _IMPL.setdefault((target, what), {})
        other = table.get(kind)
        if other is not None and other is not cls:
            raise TypeError(f"two {what}s '{kind}' for the {target} target: {other.__module__}.{other.__name__} "
                            f"and {cls.__module__}.{cls.__name__}")
        table[kind] = cls
        return cls

    return deco


def fault(target: str) -> Callable[[T], T]:
    """Class decorator: this class implements a catalogue fault on ``target``."""
    return _register(target, "fault")


def check(target: str) -> Callable[[T], T]:
    """Class decorator: this class implements a catalogue check on ``target``."""
    return _register(target, "check")


def load_plugins() -> None:
    """Import every ``resilience_harness.plugins`` entry point once."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001 - reported, and its faults simply do not exist
            PLUGIN_ERRORS[ep.name] = f"{type(exc).__name__}: {exc}"
            log.warning("harness plugin %s (%s) could not be loaded: %s", ep.name, ep.value, exc)


def _load_builtin(target: str) -> None:
    if target in _LOADED:
        return
    _LOADED.add(target)
    for what in ("faults", "checks"):
        try:
            package = importlib.import_module(f"harness.targets.{target}.{what}")
        except ModuleNotFoundError:
            continue
        for mod in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{mod.name}")


def implementations(target: str, what: str) -> dict[str, type]:
    """Every ``what`` ("fault" or "check") the ``target`` kind implements: kind -> class."""
    _load_builtin(target)
    load_plugins()
    return dict(_IMPL.get((target, what), {}))


def targets() -> list[str]:
    """Target kinds that have implementations (built in, or from plugins)."""
    from harness.targets import TARGET_KINDS

    for t in TARGET_KINDS:
        _load_builtin(t)
    load_plugins()
    return list(TARGET_KINDS) + sorted({t for t, _ in _IMPL} - set(TARGET_KINDS))
