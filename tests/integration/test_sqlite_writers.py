"""SQLite's writers: reads never wait for the write lock, writers take turns, a broken writer lets go.

A write session (the one a POST gets) reads without SQLite's write lock; its first write takes this
process's writer turn and then ``BEGIN IMMEDIATE`` (webshop/db/engine.py ``_WriterQueue``).
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from webshop.db.engine import write_session

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


async def make_table(alchemy) -> None:
    async with alchemy.get_engine().begin() as connection:
        await connection.execute(text("CREATE TABLE tally (n integer)"))


async def count(alchemy) -> int:
    async with alchemy.get_engine().connect() as connection:
        return (await connection.execute(text("SELECT count(*) FROM tally"))).scalar_one()


async def test_a_write_sessions_reads_do_not_wait_for_a_writer(alchemy):
    await make_table(alchemy)
    async with write_session(alchemy) as writer:
        await writer.execute(text("INSERT INTO tally VALUES (1)"))  # holds the turn and the lock
        async with write_session(alchemy) as reader:
            # A second request's reads go on while the first one writes (before: it waited for the lock).
            seen = await asyncio.wait_for(reader.scalar(text("SELECT count(*) FROM tally")), 2)
            assert seen == 0
            await reader.rollback()
        await writer.commit()
    assert await count(alchemy) == 1


async def test_writers_take_turns_and_every_write_lands(alchemy):
    await make_table(alchemy)

    async def add(n: int) -> None:
        async with write_session(alchemy) as session:
            before = await session.scalar(text("SELECT count(*) FROM tally"))  # read first, then write
            await session.execute(text("INSERT INTO tally VALUES (:n)"), {"n": n})
            assert before is not None
            await session.commit()

    await asyncio.wait_for(asyncio.gather(*(add(n) for n in range(20))), 30)
    assert await count(alchemy) == 20


async def test_a_writer_whose_connection_breaks_lets_the_next_one_in(alchemy):
    await make_table(alchemy)
    async with write_session(alchemy) as broken:
        await broken.execute(text("INSERT INTO tally VALUES (1)"))
        await (await broken.connection()).invalidate()
        await broken.rollback()

    async def add(n: int) -> None:
        async with write_session(alchemy) as session:
            await session.execute(text("INSERT INTO tally VALUES (:n)"), {"n": n})
            await session.commit()

    await asyncio.wait_for(asyncio.gather(*(add(n) for n in range(3))), 10)
    assert await count(alchemy) == 3
