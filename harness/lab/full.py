"""The full lab's extra components, in start order (``Lab`` stops them in reverse).

Before the sample service (``before_service = True``, the default):
  alert-rules   writes <run_dir>/prometheus/rules/alerts.yml from the plan
  etcd          a member per zone                      (only with cfg.with_db)
  patroni       PostgreSQL 15 members, one per zone    (only with cfg.with_db)
  postgres-exporter  one beside each member            (only with cfg.with_db)
  dependency    the stub external dependency
  toxiproxy     proxies db and dependency (the service reaches both through it)
  webhook       the recording webhook receiver
  alertmanager  routes by severity to the webhook receivers
Then the core starts HAProxy (with the db-rw listener from ``Patroni.haproxy_sections``)
and the orchestrator (api replicas), then, after the service:
  patroni-replicas  waits for the replicas Patroni clones meanwhile (only with cfg.with_db)
  pgbackrest    waits for the first full backup started in the background once the
                primary was up (only with cfg.with_db)
and finally Prometheus, which scrapes every component's jobs and loads the rules.
"""
from __future__ import annotations

from harness.lab.alerting import AlertRules, Alertmanager, Webhook
from harness.lab.component import Component
from harness.lab.config import LabConfig
from harness.lab.dependency import Dependency
from harness.lab.toxiproxy import Toxiproxy


def components(cfg: LabConfig) -> list[Component]:
    out: list[Component] = [AlertRules(cfg)]
    if cfg.with_db:
        from harness.lab.backup import Backup
        from harness.lab.db_components import DbReplicas, Etcd, Patroni, PostgresExporter

        out += [Etcd(cfg), Patroni(cfg), PostgresExporter(cfg)]
    out += [Dependency(cfg), Toxiproxy(cfg), Webhook(cfg), Alertmanager(cfg)]
    if cfg.with_db:
        out += [DbReplicas(cfg), Backup(cfg)]
    return out


def component(cfg: LabConfig, name: str) -> Component:
    for c in components(cfg):
        if c.name == name:
            return c
    raise KeyError(name)
