"""The few database operations the integrity checks need, for PostgreSQL and MariaDB/MySQL.

``connect(url)`` takes ``postgresql://user:pass@host:port/db`` (or a libpq conninfo
string) and ``mysql://`` / ``mariadb://`` URLs. PostgreSQL goes through psycopg; MariaDB
through the ``mariadb`` command-line client (Debian's mariadb-client), so the harness
needs no second database driver.

Checksums are order-independent: the sum over rows of the first 60 bits of the md5 of
the row's text, plus the row count. Two copies agree only when every row does.
"""
from __future__ import annotations

import os
import subprocess
import uuid
from urllib.parse import unquote, urlparse

from harness.errors import EnvironmentNotReady


class DbError(Exception):
    pass


def connect(url: str) -> "Db":
    if url.startswith(("mysql://", "mariadb://")):
        return MariaDb(url)
    return PgDb(url)


class Db:
    kind = "?"

    def scalar(self, query: str):  # pragma: no cover - interface
        raise NotImplementedError

    def execute(self, sql: str) -> None:  # pragma: no cover
        raise NotImplementedError

    def table_exists(self, table: str) -> bool:  # pragma: no cover
        raise NotImplementedError

    def table_stats(self, table: str, as_of: str = "", cutoff: float | None = None) -> tuple[int, str]:
        raise NotImplementedError  # pragma: no cover

    def newest(self, table: str, column: str, before: float | None = None) -> float | None:
        raise NotImplementedError  # pragma: no cover

    def count_after(self, table: str, column: str, after: float) -> int:
        raise NotImplementedError  # pragma: no cover

    def read_write(self) -> str:
        """Create a table, write a row, read it back, drop the table. Returns what it did."""
        name = f"drill_probe_{uuid.uuid4().hex[:8]}"
        self.execute(f"CREATE TABLE {name} (id integer PRIMARY KEY, note varchar(40))")
        try:
            self.execute(f"INSERT INTO {name} VALUES (1, 'written by the drill')")
            got = self.scalar(f"SELECT note FROM {name} WHERE id = 1")
            if got != "written by the drill":
                raise DbError(f"wrote a row and read back {got!r}")
        finally:
            self.execute(f"DROP TABLE {name}")
        return f"created {name}, wrote and read back a row, dropped it"

    def close(self) -> None:
        pass


class PgDb(Db):
    kind = "postgresql"

    def __init__(self, url: str):
        import psycopg

        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            raise DbError(f"cannot connect: {str(exc).strip().splitlines()[0]}") from None

    def _q(self, query: str, params=None):
        import psycopg

        try:
            return self.conn.execute(query, params).fetchall()
        except psycopg.Error as exc:
            raise DbError(str(exc).strip().splitlines()[0]) from None

    def scalar(self, query: str):
        rows = self._q(query)
        return rows[0][0] if rows and rows[0] else None

    def execute(self, sql: str) -> None:
        import psycopg

        try:
            self.conn.execute(sql)
        except psycopg.Error as exc:
            raise DbError(str(exc).strip().splitlines()[0]) from None

    def table_exists(self, table: str) -> bool:
        return self._q("SELECT to_regclass(%s) IS NOT NULL", (table,))[0][0]

    def table_stats(self, table, as_of="", cutoff=None):
        where = f" WHERE t.{as_of} <= to_timestamp(%s)" if as_of and cutoff is not None else ""
        params = (cutoff,) if where else None
        row = self._q("SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)::text"
                      f" FROM {table} t{where}", params)[0]
        return int(row[0]), str(row[1])

    def newest(self, table, column, before=None):
        where = f" WHERE {column} <= to_timestamp(%s)" if before is not None else ""
        row = self._q(f"SELECT extract(epoch FROM max({column}))::float8 FROM {table}{where}",
                      (before,) if where else None)[0]
        return row[0]

    def count_after(self, table, column, after):
        return int(self._q(f"SELECT count(*) FROM {table} WHERE {column} > to_timestamp(%s)", (after,))[0][0])

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


class MariaDb(Db):
    """Through the ``mariadb`` client in batch mode (one process per query)."""

    kind = "mariadb"

    def __init__(self, url: str):
        u = urlparse(url)
        self.host = u.hostname or "127.0.0.1"
        self.port = u.port or 3306
        self.user = unquote(u.username or "root")
        self.password = unquote(u.password or "")
        self.database = (u.path or "/").lstrip("/")
        self.client = "mariadb"
        if subprocess.run(["which", self.client], capture_output=True).returncode != 0:
            raise EnvironmentNotReady("the mariadb client is not installed (apt-get install mariadb-client)")
        self.scalar("SELECT 1")

    def _run(self, sql: str) -> list[list[str]]:
        argv = [self.client, "--batch", "--skip-column-names", "--raw", f"--host={self.host}",
                f"--port={self.port}", f"--user={self.user}", "--connect-timeout=5", "--protocol=TCP"]
        if self.database:
            argv.append(self.database)
        env = dict(os.environ, MYSQL_PWD=self.password)
        try:
            r = subprocess.run(argv, input=sql, capture_output=True, text=True, timeout=120, env=env)
        except subprocess.TimeoutExpired:
            raise DbError("query timed out after 120s") from None
        if r.returncode != 0:
            raise DbError((r.stderr or r.stdout).strip().splitlines()[-1] if (r.stderr or r.stdout).strip()
                          else f"mariadb exited {r.returncode}")
        return [line.split("\t") for line in r.stdout.splitlines()]

    def scalar(self, query: str):
        rows = self._run(query)
        if not rows or not rows[0]:
            return None
        v = rows[0][0]
        if v == "NULL":
            return None
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v

    def execute(self, sql: str) -> None:
        self._run(sql)

    def _split(self, table: str) -> tuple[str, str]:
        if "." in table:
            schema, name = table.split(".", 1)
            return f"'{schema}'", name
        return "DATABASE()", table

    def table_exists(self, table: str) -> bool:
        schema, name = self._split(table)
        return bool(self.scalar(f"SELECT count(*) FROM information_schema.tables WHERE table_schema = {schema} "
                                f"AND table_name = '{name}'"))

    def table_stats(self, table, as_of="", cutoff=None):
        schema, name = self._split(table)
        cols = self.scalar(
            "SELECT GROUP_CONCAT(CONCAT('COALESCE(`', column_name, '`, ''<null>'')') ORDER BY ordinal_position "
            f"SEPARATOR ', ') FROM information_schema.columns WHERE table_schema = {schema} AND table_name = '{name}'")
        if not cols:
            raise DbError(f"table {table} does not exist")
        where = f" WHERE `{as_of}` <= FROM_UNIXTIME({cutoff:.6f})" if as_of and cutoff is not None else ""
        rows = self._run(f"SELECT COUNT(*), COALESCE(SUM(CAST(CONV(SUBSTRING(MD5(CONCAT_WS('|', {cols})), 1, 15), "
                         f"16, 10) AS UNSIGNED)), 0) FROM {table}{where}")
        return int(rows[0][0]), rows[0][1]

    def newest(self, table, column, before=None):
        where = f" WHERE `{column}` <= FROM_UNIXTIME({before:.6f})" if before is not None else ""
        v = self.scalar(f"SELECT UNIX_TIMESTAMP(MAX(`{column}`)) FROM {table}{where}")
        return None if v is None else float(v)

    def count_after(self, table, column, after):
        return int(self.scalar(f"SELECT COUNT(*) FROM {table} WHERE `{column}` > FROM_UNIXTIME({after:.6f})") or 0)
