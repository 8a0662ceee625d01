"""``harness drill ...`` and ``harness backups``."""
from __future__ import annotations

import click


@click.group()
def drill() -> None:
    """Restore drills: restore a backup, check its integrity, measure RTO/RPO."""
