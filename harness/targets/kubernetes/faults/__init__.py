"""Kubernetes faults: one module per fault kind, each registered with ``@registry.fault("kubernetes")``."""
from __future__ import annotations
