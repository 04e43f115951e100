"""One PostgreSQL test database per test process, put back to the migrated template's rows before each test.

Each test used to get a fresh copy of the template (``CREATE DATABASE ... TEMPLATE``, then ``DROP
DATABASE``). A copy writes about 800 files, and on this ext4 file system every new file's inode is
chosen past the inodes freed in the last seconds (the kernel's ``recently_deleted`` check): once the
suite had dropped a few hundred copies, one copy took 0.4 to 1 s of kernel time instead of 0.07 s, and
the PostgreSQL half of the suite spent minutes on it (``perf`` showed ``find_inode_bit`` ->
``recently_deleted`` under ``openat``).

So each test process creates its database once and, before every test, rewrites it in place:

- the other sessions on it (a live server's workers, an engine a failed test left open) are ended, as
  ``DROP DATABASE ... WITH (FORCE)`` did;
- every table is emptied with ``DELETE`` (``TRUNCATE`` would create new files again) and the template's
  rows are copied back (``COPY`` in binary), with ``session_replication_role = replica`` so that foreign
  keys and the catalog's ``NOTIFY`` triggers do not fire half-way (setting it needs a superuser, as the
  ``postgres`` user of the test server is, or on PostgreSQL 15 a role granted ``SET`` on it);
- every sequence is set back to where the template left it, so ids start where they did in a copy.

A test that changed the schema itself (a trigger disabled and left so, a table added) changes the
catalog's fingerprint (``FINGERPRINT``); the next reset then drops the database and copies the template
as before, so no test ever starts on another test's schema; so does a restore the database refuses.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import asyncpg

FINGERPRINT = """
SELECT md5(coalesce(string_agg(item, ',' ORDER BY item), '')) FROM (
    SELECT 'n:' || nspname FROM pg_namespace
    UNION ALL SELECT 'e:' || extname || extversion FROM pg_extension
    UNION ALL SELECT 'c:' || c.oid || c.relname || c.relkind::text || c.relnatts
        FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL SELECT 'v:' || c.oid || md5(pg_get_viewdef(c.oid))
        FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('v', 'm')
    UNION ALL SELECT 'q:' || seqrelid || seqincrement || seqmin || seqmax || seqcycle FROM pg_sequence
        WHERE seqrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
    UNION ALL SELECT 'y:' || e.enumtypid || e.enumlabel FROM pg_enum e
        JOIN pg_type t ON t.oid = e.enumtypid WHERE t.typnamespace = 'public'::regnamespace
    UNION ALL SELECT 'a:' || a.attrelid || a.attname || a.atttypid || a.atttypmod || a.attcollation
            || a.attnotnull || a.attisdropped || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0
    UNION ALL SELECT 't:' || t.oid || t.tgname || t.tgenabled::text
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL SELECT 'k:' || oid || conname || convalidated FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT 'f:' || oid || proname || md5(prosrc) FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    UNION ALL SELECT 's:' || setrole || array_to_string(setconfig, ';') FROM pg_db_role_setting
        WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
) AS catalog(item)
"""
"""A digest of the database's schema: namespaces, extensions, and the ``public`` schema's relations (view
bodies too), sequences' options, enum labels, columns (type with its length, collation, default), triggers
(with whether they are enabled), constraints and functions, plus this database's settings. Object ids are
part of it, so an object dropped and made again counts as a change."""

TABLES = """
SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename
"""
SEQUENCES = """
SELECT format('%I.%I', schemaname, sequencename), coalesce(last_value, start_value), last_value IS NOT NULL
FROM pg_sequences WHERE schemaname = 'public' ORDER BY sequencename
"""
OTHER_SESSIONS = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
"""


@dataclass
class Snapshot:
    """What the template holds: its schema's digest, the ``public`` schema's tables, each table's rows
    (binary ``COPY``, only the tables that have any) and each sequence's position ``(name, value, is_called)``."""

    fingerprint: str
    tables: list[str]
    rows: dict[str, bytes]
    sequences: list[tuple[str, int, bool]]


@dataclass
class ResettableDatabase:
    """The PostgreSQL database ``name`` (asyncpg DSN ``dsn``) on the server whose maintenance database is
    at ``server_dsn``, kept equal to the database ``template`` (see the module's docstring).

    ``reset()`` before each test; ``drop()`` once the process is done. Raises what asyncpg raises when
    the server refuses (a test then errors in its set-up, as it did when the copy failed).
    """

    server_dsn: str
    dsn: str
    name: str
    template: str
    copies: int = 0
    """How many times the template was copied (once, plus once for each test that changed the schema)."""
    _snapshot: Snapshot | None = field(default=None, repr=False)

    async def reset(self) -> None:
        """Make the database hold exactly the template's rows and sequences (copy it afresh if the last
        test changed its schema, or on the first call)."""
        if self._snapshot is None:
            await self._copy_template()
            return
        connection = await asyncpg.connect(self.dsn)
        try:
            await self._end_other_sessions(connection)
            changed = await connection.fetchval(FINGERPRINT) != self._snapshot.fingerprint
            if not changed:
                try:
                    await self._restore(connection, self._snapshot)
                except (asyncpg.PostgresError, asyncpg.InterfaceError):
                    changed = True  # a change the digest cannot see refused the template's rows: copy it
        finally:
            await connection.close()
        if changed:
            await self._copy_template()

    async def drop(self) -> None:
        """Drop the database (ending its sessions)."""
        connection = await asyncpg.connect(self.server_dsn)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await connection.close()

    async def _copy_template(self) -> None:
        connection = await asyncpg.connect(self.server_dsn)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            await connection.execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{self.template}"')
        finally:
            await connection.close()
        self.copies += 1
        connection = await asyncpg.connect(self.dsn)
        try:
            self._snapshot = await self._take(connection)
        finally:
            await connection.close()

    @staticmethod
    async def _take(connection: asyncpg.Connection) -> Snapshot:
        tables = [row[0] for row in await connection.fetch(TABLES)]
        rows: dict[str, bytes] = {}
        for table in tables:
            # The names come from pg_tables, quoted.
            if await connection.fetchval(f'SELECT EXISTS (SELECT FROM public."{table}")'):  # noqa: S608
                buffer = io.BytesIO()
                await connection.copy_from_table(table, schema_name="public", output=buffer, format="binary")
                rows[table] = buffer.getvalue()
        sequences = [(name, value, called) for name, value, called in await connection.fetch(SEQUENCES)]
        return Snapshot(await connection.fetchval(FINGERPRINT), tables, rows, sequences)

    @staticmethod
    async def _end_other_sessions(connection: asyncpg.Connection) -> None:
        """End every other session on the database and wait until they are gone (their locks with them)."""
        for _ in range(200):
            pids = [row[0] for row in await connection.fetch(OTHER_SESSIONS)]
            if not pids:
                return
            await connection.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
            await connection.execute("SELECT pg_sleep(0.025)")
        raise RuntimeError(f"sessions on the test database would not end: {pids}")

    @staticmethod
    async def _restore(connection: asyncpg.Connection, snapshot: Snapshot) -> None:
        async with connection.transaction():
            await connection.execute("SET LOCAL session_replication_role = replica")
            # A lock nobody will release (a prepared transaction) fails the reset instead of hanging it.
            await connection.execute("SET LOCAL lock_timeout = '30s'")
            emptied = "".join(f'DELETE FROM public."{table}";' for table in snapshot.tables)  # noqa: S608
            await connection.execute(emptied)
            for table, data in snapshot.rows.items():
                await connection.copy_to_table(table, schema_name="public", source=io.BytesIO(data), format="binary")
            await connection.executemany("SELECT setval($1::regclass, $2, $3)", snapshot.sequences)
