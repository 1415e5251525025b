"""The PostgreSQL append statement's own placeholders ($1, $2...) match its parameters,
whatever the batch's shape: one record, a VALUES list past psycopg's 50-parameter cache,
the most VALUES rows, arrays past them; with the outbox, with settlements, with both."""

from __future__ import annotations

import re

import pytest

from govfn.chronicle.postgres.rows import WriterLog
from govfn.chronicle.records import Record
from govfn.chronicle.settlement import Settlement


def _placeholders(statement: str) -> list[int]:
    return sorted({int(n) for n in re.findall(r"\$(\d+)", statement)})


@pytest.mark.parametrize("size", [1, 8, 64, 65])
@pytest.mark.parametrize("outbox", [False, True])
@pytest.mark.parametrize("settled", [0, 2])
def test_every_parameter_has_its_placeholder(size: int, outbox: bool, settled: int) -> None:
    records = [Record.build("TEST", {"i": i}) for i in range(size)]
    settlements = [Settlement(f"k{i}", f"h{i}", "{}", 60.0) for i in range(settled)]
    statement, params, seq, _ = WriterLog(3).rows(records, outbox, settlements)
    assert "%s" not in statement
    assert _placeholders(statement) == list(range(1, len(params) + 1))
    assert seq == size
    if settled:  # the claims' four columns come first, each a list over the settlements
        assert params[:4] == [["k0", "k1"], ["h0", "h1"], ["{}", "{}"], [60.0, 60.0]]
        assert statement.startswith("WITH settled AS (UPDATE idempotency.claims")
    rows = params[4:] if settled else params
    if size <= 64:  # VALUES rows: log, seq, cid, type, body, chain, tree per record
        assert rows[0:4] == [3, 1, records[0].cid, "TEST"] and len(rows) == 7 * size
    else:  # arrays: the log once, then a column per field
        assert rows[0] == 3 and rows[1] == list(range(1, size + 1))
    assert ("INSERT INTO chronicle.outbox" in statement) is outbox
