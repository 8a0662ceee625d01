"""Kubernetes checks: one module per check kind, each registered with ``@registry.check("kubernetes")``."""
from __future__ import annotations
