"""``harness plan ...``: validate, show, rules, test, check an operations plan."""
from __future__ import annotations

import click


@click.group()
def plan() -> None:
    """Operations plans: validate, show, generate rules, test them, check live monitoring."""
