"""`training-files check [--repair] [--json]`: the consistency checker from the command line.

Uses the owner's database URL and the configured storage, never migrates, and is safe beside
running servers. Exit status 0 when the store is consistent (after the repair, with
`--repair`), 1 otherwise.
"""

from __future__ import annotations

import asyncio
import json
import sys

import asyncpg
from rich.console import Console
from rich.table import Table

from ..config import Settings
from ..runtime import database_urls, open_owner_writers, open_storage
from .consistency import check_store
from .report import Kind, Report, State

_STATE_STYLES = {
    State.REMOVED: "green",
    State.IN_USE: "cyan",
    State.FOUND: "yellow",
    State.FAILED: "red",
    State.REPORTED: "red",
}


def run_check(settings: Settings, *, repair: bool, as_json: bool) -> int:
    try:
        report = asyncio.run(_check(settings, repair=repair))
    except asyncpg.UndefinedTableError:
        Console(stderr=True).print(
            "[red]error:[/red] the database has no schema yet: run training-files migrate"
        )
        return 2
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        print_report(report, Console())
    return 0 if report.consistent else 1


async def _check(settings: Settings, *, repair: bool) -> Report:
    writers = await open_owner_writers(settings, await database_urls(settings))
    try:
        storage = await open_storage(settings)
        try:
            return await check_store(writers, storage, repair=repair)
        finally:
            await storage.close()
    finally:
        await writers.close()


def print_report(report: Report, console: Console) -> None:
    for finding in report.findings:
        style = _STATE_STYLES[finding.state]
        where = (
            f"{finding.bucket}/{finding.key}"
            if finding.key
            else f"training file {finding.training_file_id}"
        )
        detail = f": {finding.detail}" if finding.detail else ""
        console.print(
            f"[{style}]{finding.state}[/{style}] {finding.kind} {where}{detail}",
            highlight=False,
            soft_wrap=True,
        )
    console.print(_summary(report))
    verdict = "consistent" if report.consistent else "NOT consistent"
    console.print(
        f"{report.training_files} training files verified, {report.objects} objects "
        f"({report.object_bytes} bytes) and {report.pending_writes} unfinished writes listed: "
        f"{verdict}",
        highlight=False,
    )


def _summary(report: Report) -> Table:
    table = Table(title="Consistency check" + (" and repair" if report.repair else ""))
    table.add_column("finding")
    table.add_column("state")
    table.add_column("count", justify="right")
    table.add_column("bytes", justify="right")
    counts = report.counts()
    for kind in Kind:
        for state in State:
            if counts[(kind, state)]:
                table.add_row(
                    kind.value,
                    state.value,
                    str(counts[(kind, state)]),
                    str(report.bytes_of(kind, state)),
                )
    if not counts:
        table.add_row("(none)", "", "0", "0")
    return table
