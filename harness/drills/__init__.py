"""Restore drills: restore a backup, check it, measure RTO and RPO against the plan."""
