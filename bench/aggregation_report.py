"""The write benchmark's tables: one per backend, then every target beside its figure."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .aggregation_probes import MB

if TYPE_CHECKING:
    from .aggregation import BackendResult, Phase
    from .aggregation_probes import Cpu, Floor

CREATE_TARGET = 2.0  # create ≤ 2× the I/O floor
ADD_TARGET = 1.5  # add to 10,000 ≤ 1.5× add to 80
RSS_TARGET_MB = 250.0  # server peak RSS with the largest file
HUGE_ADD_TARGET = 2.0  # seconds, add of 80 to the largest file
FLAT_TARGET = 1.2  # peak with the largest file ≤ 1.2× the peak with files of 80
NAMES = {"local": "local storage", "s3": "S3 (moto_server)"}


def say(message: str = "") -> None:
    print(message, flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def met(ok: bool) -> str:
    return "met" if ok else "NOT MET"


# ------------------------------------------------------------------------------ per backend


def report_backend(result: BackendResult, batch: int) -> None:
    say(f"\n=== {NAMES[result.name]} ===")
    report_creates(result, batch)
    report_adds(result, batch)
    report_memory(result)


def report_creates(result: BackendResult, batch: int) -> None:
    creates = [c.seconds for c in result.creates]
    sizes = [c.bytes / MB for c in result.creates]
    say(
        f"create of {batch} over GraphQL: {', '.join(ms(s) for s in creates)} ms; "
        f"median {ms(median(creates))} ms (JSON + JSONL {median(sizes):.1f} MB)"
    )
    say(f"  CPU per create (median): {cpu_line(result.create_cpu)}")
    if not result.floors:
        return
    floors = result.floors
    say(
        f"I/O floor, same disk: read {batch} pieces objects "
        f"({median([f.read_bytes / MB for f in floors]):.1f} MB) "
        f"{ms(median([f.read_seconds for f in floors]))} ms + write what the create stored "
        f"({median([f.written_bytes / MB for f in floors]):.1f} MB) with fsync "
        f"{ms(median([f.write_seconds for f in floors]))} ms"
    )
    say(
        f"  floors: {', '.join(ms(f.seconds) for f in floors)} ms; "
        f"median {ms(median_seconds(floors))} ms"
    )
    cached = result.cached_floors
    say(
        f"  over the pieces each create had just read (so cached): "
        f"{', '.join(ms(f.seconds) for f in cached)} ms; "
        f"median {ms(median_seconds(cached))} ms, read "
        f"{ms(median([f.read_seconds for f in cached]))} ms"
    )


def cpu_line(cpus: Sequence[Cpu]) -> str:
    line = (
        f"server {ms(median([c.server for c in cpus]))} ms "
        f"(and waited for a CPU {ms(median([c.server_waiting for c in cpus]))} ms), "
        f"PostgreSQL {ms(median([c.postgres for c in cpus]))} ms"
    )
    stores = [c.store for c in cpus if c.store is not None]
    return line + (f", moto {ms(median(stores))} ms" if stores else "")


def median_seconds(floors: Sequence[Floor]) -> float:
    return median([f.seconds for f in floors])


def report_adds(result: BackendResult, batch: int) -> None:
    s3 = result.name == "s3"
    header = (
        f"{'file':>7} {'MB':>6} | {'built by':<44} | {f'add {batch}, ms':>22} {'median':>6} | "
        f"{'server':>6} {'wait':>5} {'PG':>5}"
        + (f" {'moto':>6}" if s3 else f" | {'files':>5} {'wrote':>5}")
    )
    say(header)
    say("-" * len(header))
    for size, adds in sorted(result.adds.items()):
        build = result.builds.get(size)
        built = f"{build.how}, {build.seconds:,.0f} s" if build else "—"
        runs = ", ".join(ms(a.seconds) for a in adds)
        cpus = [a.cpu for a in adds]
        line = (
            f"{size:>7,} {adds[0].before_bytes / MB:>6,.0f} | {built:<44} | {runs:>22} "
            f"{ms(add_median(result, size)):>6} | {ms(median([c.server for c in cpus])):>6} "
            f"{ms(median([c.server_waiting for c in cpus])):>5} "
            f"{ms(median([c.postgres for c in cpus])):>5}"
        )
        if s3:
            line += f" {ms(median([c.store or 0.0 for c in cpus])):>6}"
        else:
            files = median([float(a.stored_files or 0) for a in adds])
            wrote = median([a.server_wrote / MB for a in adds])
            line += f" | {files:>5,.0f} {wrote:>5.1f}"
        say(line)
    legend = [
        "(file: conversations before the first measured add, MB: its JSON + JSONL then;",
        f" built by: how the file was made, and how long it took; each measured add puts {batch} new",
        " conversations in; server, PG" + (", moto" if s3 else "") + ": ms of CPU used per add"
        " (median) by the server,",
        " PostgreSQL (all its processes)"
        + (" and moto_server" if s3 else "")
        + "; wait: ms the server's threads were ready but",
        " waited for a CPU (summed over threads)" + (")" if s3 else ";"),
    ]
    if not s3:
        legend += [
            " files: in the file's storage directory before the add (its objects' segments);",
            " wrote: MB the server itself passed to write calls per add (wchar of",
            " /proc/<pid>/io), not what the kernel copied or linked for it)",
        ]
    say("\n".join(legend))


def add_median(result: BackendResult, size: int) -> float:
    return median([a.seconds for a in result.adds.get(size, [])])


def report_memory(result: BackendResult) -> None:
    reset = "VmHWM reset at each" if result.peaks_reset else "VmHWM since the start"
    say(f"server memory by phase ({reset}; load: the machine's, 1 min, 2 cores, at its end):")
    for phase in result.phases:
        say(
            f"  {phase.label:<34} peak {phase.peak_mb:4.0f} MB, RSS at its end "
            f"{phase.rss_mb:4.0f} MB, load {phase.load:4.1f}"
        )
    if result.moto_peak_mb is not None:
        say(f"  (moto_server's own peak RSS: {result.moto_peak_mb:,.0f} MB)")


# ------------------------------------------------------------------------------ targets


@dataclass(frozen=True)
class Row:
    metric: str
    figure: str
    target: str
    verdict: str  # met, NOT MET, not run, or — (no target)


def create_rows(results: Sequence[BackendResult], batch: int) -> list[Row]:
    local = next((r for r in results if r.floors), None)
    if local is None:
        return [Row(f"create {batch}, GraphQL end to end / I/O floor", "—", "≤ 2×", "not run")]
    floor = median_seconds(local.floors)
    rows = []
    for result in results:
        create = median([c.seconds for c in result.creates])
        ratio = create / floor
        label = f"create {batch}, GraphQL end to end / I/O floor, {result.name}"
        figure = f"{ratio:.2f}× ({ms(create)} / {ms(floor)} ms)"
        if result is local:
            rows.append(Row(label, figure, f"≤ {CREATE_TARGET:.0f}×", met(ratio <= CREATE_TARGET)))
            cached = median_seconds(local.cached_floors)
            rows.append(
                Row(
                    "  vs the floor over the pieces it had just read",
                    f"{create / cached:.2f}× ({ms(create)} / {ms(cached)} ms)",
                    "(cached: a bound below)",
                    "—",
                )
            )
        else:  # its pieces are in moto, not on the disk the floor was measured on
            rows.append(Row(label, figure, "(local disk's floor)", "—"))
    return rows


def add_rows(results: Sequence[BackendResult], batch: int, huge: int) -> list[Row]:
    """The add target compares the largest of the default sizes (10,000) with the smallest;
    the --huge file has a target of its own (largest_rows)."""
    rows = []
    for result in results:
        compared = [size for size in result.adds if size < huge] or list(result.adds)
        small, large = min(compared), max(compared)
        ratio = add_median(result, large) / add_median(result, small)
        rows.append(
            Row(
                f"add {batch}: to {large:,} vs to {small:,} conversations, {result.name}",
                f"{ratio:.2f}× ({ms(add_median(result, large))} / "
                f"{ms(add_median(result, small))} ms)",
                f"≤ {ADD_TARGET}×",
                met(ratio <= ADD_TARGET),
            )
        )
        if result.name == "s3":
            # The server's own CPU, apart from the store's (a copy inside the store, as the
            # first add to a plain file makes, costs moto time in proportion to the file).
            cpu = {
                size: median([a.cpu.server for a in result.adds[size]]) for size in (small, large)
            }
            rows.append(
                Row(
                    f"  the server's CPU per add, {large:,} vs {small:,}, s3",
                    f"{cpu[large] / cpu[small]:.2f}× ({ms(cpu[large])} / {ms(cpu[small])} ms)",
                    "(moto's excluded)",
                    "—",
                )
            )
    return rows


def largest_rows(results: Sequence[BackendResult], batch: int, huge: int) -> list[Row]:
    rows = []
    for result in results:
        largest = max(result.adds)
        ran = largest >= huge
        peak = max(p.peak_mb for p in result.phases)
        add = add_median(result, largest)
        note = "" if ran else (" (--huge)" if result.name == "local" else " (--huge: local only)")
        rows += [
            Row(
                f"largest file built and extended, {result.name}",
                f"{largest:,}",
                f"{huge:,}{note}",
                "met" if ran else "not run",
            ),
            Row(
                f"  server peak RSS over the run, {result.name}",
                f"{peak:.0f} MB",
                f"≤ {RSS_TARGET_MB:.0f} MB",
                met(peak <= RSS_TARGET_MB),
            ),
            Row(
                f"  add of {batch} to the file of {largest:,}, {result.name}",
                f"{add:.2f} s",
                f"< {HUGE_ADD_TARGET:.0f} s",
                met(add < HUGE_ADD_TARGET),
            ),
        ]
    return rows


def adds_phase(rounds: int, size: int) -> str:
    """The label of the phase of the measured adds to the file of `size`."""
    return f"{rounds} adds to the file of {size:,}"


def flat_rows(results: Sequence[BackendResult], batch: int) -> list[Row]:
    """The peak while building and extending the largest file against the peak with only
    files of `batch`: the creates, and the adds to the file of `batch`."""
    rows = []
    for result in results:
        largest = max(result.adds)
        small = max(_peak(result.phases, f"creates of {batch}"), _adds_peak(result, batch))
        large = max(_peak(result.phases, f"build of {largest:,}"), _adds_peak(result, largest))
        ratio = large / small
        rows.append(
            Row(
                f"memory flat: peak RSS with {largest:,} vs with {batch}, {result.name}",
                f"{ratio:.2f}× ({large:.0f} / {small:.0f} MB)",
                f"≤ {FLAT_TARGET}×",
                met(ratio <= FLAT_TARGET),
            )
        )
    return rows


def _peak(phases: Sequence[Phase], label_part: str) -> float:
    return max((p.peak_mb for p in phases if label_part in p.label), default=float("nan"))


def _adds_peak(result: BackendResult, size: int) -> float:
    label = adds_phase(len(result.adds[size]), size)
    return max((p.peak_mb for p in result.phases if p.label == label), default=float("nan"))


def report(results: Sequence[BackendResult], batch: int, huge: int) -> None:
    for result in results:
        report_backend(result, batch)
    rows = [
        *create_rows(results, batch),
        *add_rows(results, batch, huge),
        *flat_rows(results, batch),
        *largest_rows(results, batch, huge),
    ]
    width = max(len(r.metric) for r in rows)
    figure_width = max(len(r.figure) for r in rows)
    target_width = max(len(r.target) for r in rows)
    say("\n=== targets (measured in this run) ===")
    header = f"{'metric':<{width}}  {'figure':<{figure_width}}  {'target':<{target_width}}  verdict"
    say(header)
    say("-" * len(header))
    for row in rows:
        say(
            f"{row.metric:<{width}}  {row.figure:<{figure_width}}  "
            f"{row.target:<{target_width}}  {row.verdict}"
        )
