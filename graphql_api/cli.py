"""`training-files`: serve | migrate | import | check | demo | token | create | add | remove |
export-schema."""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from .config import ConfigError, Settings
from .conversations.importer import ConversationImporter, ImportResult, Outcome
from .db.migrate import MigrationError
from .failures import as_unavailable
from .storage.base import StorageError

if TYPE_CHECKING:
    from .runtime import DatabaseUrls

console = Console(stderr=True)

DEMO_SEED = 2025


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        sys.exit(args.run(args) or 0)
    except (ConfigError, MigrationError, StorageError) as error:
        _fail(str(error))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:
        unavailable = as_unavailable(error)
        if unavailable is None:
            raise
        cause = error.__cause__ or error
        _fail(f"{unavailable.message} ({type(cause).__name__}: {cause})")


def _fail(message: str) -> NoReturn:
    # Escaped: paths and URLs in the message may hold rich's markup brackets.
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="training-files", description=__doc__)
    commands = _Commands(parser.add_subparsers(required=True, metavar="COMMAND"))

    serve = commands.add_parser("serve", help="apply migrations and serve GraphQL")
    serve.add_argument(
        "--no-demo",
        action="store_true",
        help="don't import demo conversations into an empty database",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes serving the one port (each with its own pools; default 1)",
    )
    serve.set_defaults(run=_serve)

    migrate = commands.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(run=_migrate)

    imp = commands.add_parser("import", help="import enriched conversation files or directories")
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    imp.set_defaults(run=_import)

    check = commands.add_parser(
        "check",
        help="verify every training file and list what crashes left behind (safe while serving)",
    )
    check.add_argument(
        "--repair",
        action="store_true",
        help="remove leftovers whose writer is provably gone (keys not ours are only reported)",
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.set_defaults(run=_check)

    demo = commands.add_parser("demo", help="write synthetic enriched conversations")
    demo.add_argument("--conversations", type=int, default=200, metavar="N")
    demo.add_argument("--seed", type=int, default=DEMO_SEED, metavar="S")
    demo.add_argument("--out", type=Path, required=True, metavar="DIR")
    demo.set_defaults(run=_demo)

    token = commands.add_parser("token", help="print a bearer token for local use")
    token.add_argument(
        "--user", required=True, help="a user uuid, or a name mapped to a stable one"
    )
    token.add_argument("--ttl", type=int, default=24 * 3600, metavar="SECONDS")
    token.set_defaults(run=_token)

    for name, help in (
        ("create", "create a training file through the running server, showing its progress"),
        ("add", "add conversations to a training file through the running server"),
        ("remove", "remove conversations from a training file through the running server"),
    ):
        change = commands.add_parser(name, help=help)
        if name == "create":
            change.add_argument("--name", required=True)
            change.add_argument("--description")
        else:
            change.add_argument("--file", required=True, metavar="ID", help="the file's id")
        change.add_argument("ids", nargs="+", metavar="CONVERSATION_ID")
        change.add_argument(
            "--user", help="sign a token for this user with the data dir's secret (as `token`)"
        )
        change.add_argument("--token", help="a bearer token to send instead")
        change.add_argument(
            "--url", help="the server (default http://HOST:PORT from the configuration)"
        )
        change.set_defaults(run=_change, change=name)

    export = commands.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    export.set_defaults(run=_export_schema)
    return parser


class _Commands:
    """Subcommands that all take `--data-dir`, so one command line works for each of them
    (demo and export-schema accept it and use no data dir, as they ignore DATA_DIR)."""

    def __init__(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self._subparsers = subparsers
        self._common = argparse.ArgumentParser(add_help=False)
        self._common.add_argument(
            "--data-dir",
            type=Path,
            metavar="DIR",
            help="the data dir (as DATA_DIR, which this overrides; default ./.data)",
        )

    def add_parser(self, name: str, *, help: str) -> argparse.ArgumentParser:
        return self._subparsers.add_parser(name, help=help, parents=[self._common])


@dataclass(frozen=True)
class _Need:
    """Something a command uses from a running server's setup, which it must not create."""

    path: Path
    what: str
    instead: str  # the variables that make it unnecessary (an external setup)


def _require(settings: Settings, command: str, needs: list[_Need]) -> None:
    """Refuse, with one line, when something the command would otherwise create is missing:
    a fresh data dir, PostgreSQL or secret would silently be another server's."""
    missing = [need for need in needs if not need.path.exists()]
    if missing:
        _fail(_refusal(settings, command, missing))


def _refusal(settings: Settings, command: str, missing: list[_Need]) -> str:
    instead = " and ".join(dict.fromkeys(need.instead for need in missing))
    first = missing[0]
    if not first.path.is_relative_to(settings.data_dir):
        return (
            f"{command}: no {first.what} at {first.path} (from {first.instead}); "
            f"point {first.instead} at the server's"
        )
    origin = {
        "command line": "from --data-dir",
        "DATA_DIR": "from DATA_DIR",
        "default": "DATA_DIR is unset: the default ./.data",
    }[settings.data_dir_source]
    where = (
        f"{first.what} at {first.path}"
        if settings.data_dir.is_dir()
        else f"data dir at {settings.data_dir}"
    )
    return (
        f"{command}: no {where} ({origin}); point --data-dir or DATA_DIR at the data dir of "
        f"a server (`training-files serve` creates one), or set {instead} for an external setup"
    )


def _secret_needs(settings: Settings) -> list[_Need]:
    """Signing needs only the server's secret."""
    if settings.jwt_secret_source != "none":
        return []
    return [_Need(settings.data_dir / "jwt-secret", "JWT secret", "JWT_SECRET")]


def _store_needs(settings: Settings) -> list[_Need]:
    """Importing and checking need the server's database and its storage (not its secret)."""
    needs = []
    if settings.database_url is None:
        pgdata = settings.data_dir / "postgres" / "PG_VERSION"
        needs.append(_Need(pgdata, "embedded PostgreSQL", "DATABASE_URL"))
    if settings.s3 is None:
        needs.append(_Need(settings.storage_path, "local storage", "STORAGE_URL"))
    return needs


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app
    from .observability.serving import UVICORN_OPTIONS, metrics_for_workers, start_logging

    if not 1 <= args.workers <= 64:
        console.print("[red]error:[/red] --workers must be between 1 and 64")
        return 2
    settings = Settings.from_env(data_dir=args.data_dir)
    if args.workers > 1:
        # Workers read their settings from the environment: give them this data dir.
        os.environ["DATA_DIR"] = str(settings.data_dir)
    start_logging(settings)
    asyncio.run(_prepare_for_serving(settings, demo=not args.no_demo))
    # Not wrapped and not markup, so that each command line can be pasted as printed.
    console.print(_banner(settings), highlight=False, markup=False, emoji=False, soft_wrap=True)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again; exiting through
    # Python instead of the default action lets the embedded PostgreSQL be stopped at exit.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # With one process, the app object; with several, each worker builds its own app (and
    # pools) from the same environment and joins the embedded PostgreSQL this process started,
    # which stops with the last of them.
    with metrics_for_workers(settings, args.workers):
        uvicorn.run(
            create_app(settings, migrate=False, freeze_heap=True)
            if args.workers == 1
            else "graphql_api.app:worker_app",
            factory=args.workers > 1,
            workers=args.workers,
            host=settings.host,
            port=settings.port,
            log_level="info",
            # In-flight requests get this long to finish after SIGTERM or Ctrl-C; then they are
            # cancelled (their builds clean up after themselves) and the process exits.
            timeout_graceful_shutdown=int(settings.shutdown_timeout),
            **UVICORN_OPTIONS,
        )
    if args.workers > 1:
        _forget_exited_workers(settings)
    return 0


def _banner(settings: Settings) -> str:
    data_dir = ["--data-dir", str(settings.data_dir)]
    token = shlex.join([_console_script(), "token", *data_dir, "--user", "alice"])
    imp = shlex.join([_console_script(), "import", *data_dir]) + " PATH..."
    return (
        f"GraphQL and the playground: http://{settings.host}:{settings.port}/graphql\n"
        f"A token for the playground's Authorization header{_token_environment(settings)}:\n"
        f"  {token}\n"
        f"Import enriched conversation files or directories{_store_environment(settings)}:\n"
        f"  {imp}"
    )


def _console_script() -> str:
    """This command as started (sys.argv[0]), else the one beside the interpreter (the
    virtualenv's bin): a printed command must not depend on PATH or the current directory."""
    started = Path(sys.argv[0])
    if started.stem == "training-files" and started.is_file():
        return str(started.resolve())
    beside = Path(sys.executable).absolute().parent / "training-files"
    return str(beside) if beside.is_file() else "training-files"


def _token_environment(settings: Settings) -> str:
    """What a token command needs beyond the data dir to be accepted by this server."""
    names = ["JWT_SECRET"] if settings.jwt_secret_source == "JWT_SECRET" else []
    names += ["JWT_AUDIENCE"] if settings.jwt_audience else []
    return _with(names)


def _store_environment(settings: Settings) -> str:
    """What an import needs beyond the data dir to reach this server's database and storage."""
    names = ["DATABASE_URL"] if settings.database_url else []
    names += ["DATABASE_OWNER_URL"] if settings.database_owner_url else []
    if settings.s3 is not None:
        names += ["STORAGE_URL", "the S3_ and AWS_ settings"]
    elif settings.storage_path != settings.data_dir / "storage":
        names += ["STORAGE_URL"]
    return _with(names)


def _with(names: list[str]) -> str:
    return f" (with this server's {', '.join(names)} set)" if names else ""


def _forget_exited_workers(settings: Settings) -> None:
    """Workers that were killed never unregistered from the embedded PostgreSQL, which would
    keep this last process from stopping it."""
    if settings.database_url is None:
        from .db.embedded import forget_dead_processes

        forget_dead_processes(settings.data_dir / "postgres")


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


async def _prepare_for_serving(settings: Settings, *, demo: bool) -> None:
    from .runtime import database_urls, prepare_database

    urls = await database_urls(settings)
    await prepare_database(settings, urls)
    if demo and settings.demo_conversations > 0:
        await _seed_demo(settings, urls)


async def _seed_demo(settings: Settings, urls: DatabaseUrls) -> None:
    """Demo conversations for an empty database, by one of several processes starting at once."""
    from .demo import write_demo_set
    from .runtime import schema_session

    async with schema_session(settings, urls) as conn:
        if await conn.fetchval("SELECT count(*) FROM conversations"):
            return
        out = settings.data_dir / "demo-conversations"
        console.print(f"Empty database: importing {settings.demo_conversations} demo conversations")
        paths = write_demo_set(out, settings.demo_conversations, DEMO_SEED)
        await _import_paths(settings, urls, paths)


async def _import_paths(
    settings: Settings, urls: DatabaseUrls, paths: list[Path]
) -> list[ImportResult]:
    from .runtime import open_owner_writers, open_storage

    writers = await open_owner_writers(settings, urls)
    try:
        storage = await open_storage(settings)
        try:
            return await _import_with_progress(ConversationImporter(writers, storage), paths)
        finally:
            await storage.close()
    finally:
        await writers.close()


def _migrate(args: argparse.Namespace) -> None:
    from .runtime import database_urls, prepare_database

    # Creates the data dir only for the embedded PostgreSQL, and never a secret: migrations
    # sign nothing, and the secret is made by the server that checks tokens against it.
    settings = Settings.from_env(data_dir=args.data_dir, create_secret=False)

    async def run() -> list[str]:
        return await prepare_database(settings, await database_urls(settings))

    applied = asyncio.run(run())
    console.print(f"applied: {', '.join(applied)}" if applied else "database is up to date")


def _import(args: argparse.Namespace) -> int:
    from .conversations.importer import find_conversation_files
    from .runtime import database_urls, prepare_database

    paths = list(find_conversation_files(args.paths))
    missing = [p for p in paths if not p.exists()]
    if missing:
        console.print(f"[red]error:[/red] no such file or directory: {missing[0]}", highlight=False)
        return 2
    settings = Settings.from_env(data_dir=args.data_dir, create_secret=False)
    _require(settings, "import", _store_needs(settings))

    async def run() -> list[ImportResult]:
        urls = await database_urls(settings)
        await prepare_database(settings, urls)
        return await _import_paths(settings, urls, paths)

    results = asyncio.run(run())
    failed = any(r.outcome in (Outcome.BLOCKED, Outcome.REFUSED) for r in results)
    return 1 if failed else 0


async def _import_with_progress(
    importer: ConversationImporter, paths: list[Path]
) -> list[ImportResult]:
    results = []
    columns = (
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("", total=len(paths))
        for path in paths:
            progress.update(task, description=path.name)
            results.append(await importer.import_file(path))
            progress.advance(task)
    _print_report(results)
    return results


def _print_report(results: list[ImportResult]) -> None:
    for result in results:
        if result.problems:
            console.print(f"[red]{result.outcome.value}[/red] {result.source}", highlight=False)
            for problem in result.problems:
                console.print(f"    {problem}", highlight=False, markup=False)
    counts = Counter(r.outcome for r in results)
    table = Table(title="Import summary")
    for heading in ("imported", "updated", "unchanged", "warned", "blocked", "refused"):
        table.add_column(heading, justify="right")
    warned = sum(1 for r in results if r.warnings and r.outcome is not Outcome.BLOCKED)
    table.add_row(
        str(counts[Outcome.IMPORTED]),
        str(counts[Outcome.UPDATED]),
        str(counts[Outcome.UNCHANGED]),
        str(warned),
        str(counts[Outcome.BLOCKED]),
        str(counts[Outcome.REFUSED]),
    )
    console.print(table)


def _check(args: argparse.Namespace) -> int:
    from .maintenance.command import run_check

    settings = Settings.from_env(data_dir=args.data_dir, create_secret=False)
    _require(settings, "check", _store_needs(settings))
    return run_check(settings, repair=args.repair, as_json=args.json)


def _demo(args: argparse.Namespace) -> int:
    from .demo import write_demo_set

    if args.conversations < 1:
        console.print("[red]error:[/red] --conversations must be at least 1")
        return 2
    paths = write_demo_set(args.out, args.conversations, args.seed)
    console.print(f"wrote {len(paths)} conversations to {args.out}", highlight=False)
    return 0


def _token(args: argparse.Namespace) -> int:
    from .auth import user_id_for

    if args.ttl < 1:
        console.print("[red]error:[/red] --ttl must be at least 1 second")
        return 2
    settings = Settings.from_env(data_dir=args.data_dir, create_secret=False)
    sys.stdout.write(_signed(settings, args.user, ttl_seconds=args.ttl) + "\n")
    console.print(f"user id {user_id_for(args.user)}, valid for {args.ttl} s", highlight=False)
    return 0


def _signed(settings: Settings, user: str, *, ttl_seconds: int) -> str:
    """A token the server of `settings` accepts, for `user` (a uuid or a name)."""
    from .auth import mint_token, user_id_for

    _require(settings, "token", _secret_needs(settings))
    return mint_token(
        user_id_for(user),
        secret=settings.jwt_secret,
        ttl_seconds=ttl_seconds,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )


def _change(args: argparse.Namespace) -> int:
    from . import changes_cli

    if (args.user is None) == (args.token is None):
        _fail("give either --user (to sign a token with the data dir's secret) or --token")
    settings = Settings.from_env(data_dir=args.data_dir, create_secret=False)
    token = args.token or _signed(settings, args.user, ttl_seconds=3600)
    url = args.url or f"http://{settings.host}:{settings.port}"
    if args.change == "create":
        change = changes_cli.Change.create(args.name, args.description, args.ids)
    elif args.change == "add":
        change = changes_cli.Change.add(args.file, args.ids)
    else:
        change = changes_cli.Change.remove(args.file, args.ids)
    try:
        payload = asyncio.run(changes_cli.run(change, url, token, console))
    except changes_cli.ServerError as error:
        _fail(str(error))
    return changes_cli.report(payload, console)


def _export_schema(args: argparse.Namespace) -> None:
    from .graphql.schema import schema_sdl

    sys.stdout.write(schema_sdl())
