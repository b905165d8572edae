"""The typed clients of `clients/`, generated afresh from the committed `schema.graphql` (which
test_schema.py keeps equal to the code): graphql-codegen's TypeScript client must type-check
under `tsc --strict`, and ariadne-codegen's Python client must run the README's operations
against the app with typed results. A schema change that breaks either fails here; the cases on
a changed copy of the schema show that these checks can fail."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from graphql_api.db.database import Database
from graphql_api.db.writers import WriterPool
from graphql_api.storage.base import Storage

from . import product_rules as rules
from .conftest import USER
from .sources import Source
from .training_file_graphql import import_thirty

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = (ROOT / "schema.graphql").read_text()
NODE_BIN = ROOT / "node_modules" / ".bin"
# `make codegen-tools` puts ariadne-codegen in a virtualenv of its own inside ours.
ARIADNE_CODEGEN = Path(sys.prefix) / "codegen" / "bin" / "ariadne-codegen"
# Generous: node's start and the type check are slow on a loaded 2-core machine.
TOOL_TIMEOUT = 240


def _layout(root: Path, schema: str) -> Path:
    """The parts of the repository the generators read, under `root`: the schema (as given),
    the operations, both configurations and node_modules (linked)."""
    (root / "schema.graphql").write_text(schema)
    ignore = shutil.ignore_patterns("generated", "training_files_client", "__pycache__")
    for part in ("clients/operations", "clients/typescript", "clients/python"):
        shutil.copytree(ROOT / part, root / part, ignore=ignore)
    shutil.copyfile(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "node_modules").symlink_to(ROOT / "node_modules", target_is_directory=True)
    return root


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
    )


def _output(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit status {result.returncode}\n{result.stdout}\n{result.stderr}"


def _changed(schema: str, old: str, new: str) -> str:
    """`schema` with `old` (which must occur once, or the case tests nothing) replaced."""
    assert schema.count(old) == 1, f"the schema no longer has {old!r}: update this case"
    return schema.replace(old, new)


# ------------------------------------------------------------------------------ TypeScript


def _require_typescript_tools() -> None:
    if shutil.which("node") is None:
        pytest.skip("node not found: the TypeScript client's check needs Node.js (and `npm ci`)")
    for tool in ("graphql-codegen", "tsc"):
        if not (NODE_BIN / tool).exists():
            pytest.fail(f"{NODE_BIN / tool} is missing: run `npm ci` (`make test` does)")


def _typescript_check(root: Path) -> tuple[subprocess.CompletedProcess[str], str]:
    """Generate the client under `root`, then type-check index.ts against it: the failing
    step's result (the type check's when generation passed) and which step it was."""
    generated = _run(
        [str(NODE_BIN / "graphql-codegen"), "--config", "clients/typescript/codegen.ts"], root
    )
    if generated.returncode != 0:
        return generated, "codegen"
    checked = _run(
        [
            str(NODE_BIN / "tsc"),
            "-p",
            "clients/typescript/tsconfig.json",
            "--strict",
            "--noEmit",
            "--pretty",
            "false",
        ],
        root,
    )
    return checked, "tsc"


def test_typescript_client_type_checks_under_strict(tmp_path: Path) -> None:
    _require_typescript_tools()
    result, step = _typescript_check(_layout(tmp_path, SCHEMA))
    assert (step, result.returncode) == ("tsc", 0), _output(result)


BREAKING_TYPESCRIPT_CHANGES = {
    "a new error code leaves the exhaustive switch": (
        "enum TrainingFileErrorCode {\n",
        'enum TrainingFileErrorCode {\n  """New."""\n  SOMETHING_NEW\n\n',
        "tsc",
        "'\"SOMETHING_NEW\"' is not assignable to type 'never'",
    ),
    "a scalar without a mapping": (
        'scalar Date @specifiedBy(url: "https://datatracker.ietf.org/doc/html/rfc3339")\n',
        'scalar Date @specifiedBy(url: "https://datatracker.ietf.org/doc/html/rfc3339")\n\n'
        '"""New."""\nscalar Decimal\n',
        "codegen",
        "Unknown scalar type Decimal",
    ),
    "a size that is no longer a number": (
        '"""Size in bytes of the JSONL."""\n  jsonlFileSize: BigInt\n',
        '"""Size in bytes of the JSONL."""\n  jsonlFileSize: String\n',
        "tsc",
        "Type 'string' is not assignable to type 'number'",
    ),
}


@pytest.mark.parametrize(
    ("old", "new", "failing_step", "message"),
    BREAKING_TYPESCRIPT_CHANGES.values(),
    ids=BREAKING_TYPESCRIPT_CHANGES.keys(),
)
def test_typescript_client_fails_on_a_breaking_schema_change(
    tmp_path: Path, old: str, new: str, failing_step: str, message: str
) -> None:
    _require_typescript_tools()
    result, step = _typescript_check(_layout(tmp_path, _changed(SCHEMA, old, new)))
    assert step == failing_step and result.returncode != 0, _output(result)
    assert message in result.stdout + result.stderr, _output(result)


# ---------------------------------------------------------------------------------- Python


def _require_ariadne_codegen() -> None:
    if not ARIADNE_CODEGEN.exists():
        pytest.fail(f"{ARIADNE_CODEGEN} is missing: run `make codegen-tools` (`make test` does)")


def _generate_python_client(root: Path) -> subprocess.CompletedProcess[str]:
    """ariadne-codegen with pyproject.toml's `[tool.ariadne-codegen]`, run in `root`."""
    return _run([str(ARIADNE_CODEGEN), "client"], root)


@pytest.fixture(scope="module")
def python_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated package `training_files_client`, imported."""
    _require_ariadne_codegen()
    root = _layout(tmp_path_factory.mktemp("python-client"), SCHEMA)
    result = _generate_python_client(root)
    assert result.returncode == 0, _output(result)
    package_dir = str(root / "clients" / "python")
    sys.path.insert(0, package_dir)
    try:
        yield importlib.import_module("training_files_client")
    finally:
        sys.path.remove(package_dir)
        for name in [n for n in sys.modules if n.partition(".")[0] == "training_files_client"]:
            del sys.modules[name]


def _persona(source: Source) -> str:
    return rules.scaffolding(source.document)["persona_key"]


async def test_python_client_runs_the_readme_operations(
    python_client: ModuleType,
    client: httpx.AsyncClient,
    db: Database,
    owner_writers: WriterPool,
    storage: Storage,
    tmp_path: Path,
) -> None:
    sources = await import_thirty(owner_writers, storage, tmp_path)
    gql = python_client.Client(url="/graphql", http_client=client)
    enums = python_client.enums
    inputs = python_client.input_types

    # conversations(filter: {personaKey}) — the Quick start's first query.
    persona = _persona(sources[0])
    expected = {str(s.id) for s in sources if _persona(s) == persona}
    listed = await gql.conversations(
        filter_=inputs.ConversationFilterInput(persona_key=persona), first=30
    )
    assert listed.conversations.total_count == len(expected)
    assert {e.node.id for e in listed.conversations.edges} == expected
    for edge in listed.conversations.edges:
        node = edge.node
        assert isinstance(node.created_at, datetime) and node.created_at.utcoffset() is not None
        assert isinstance(node.tier, enums.QualityTier)
        assert isinstance(node.pair_count, int)
        assert node.source_created_date is None or type(node.source_created_date) is date

    chosen = [s for s in sources if _persona(s) == persona][:3] + [
        s for s in sources if _persona(s) != persona
    ][:2]
    ids = [str(s.id) for s in chosen]

    # createTrainingFile, then addConversations.
    created = await gql.create_training_file(
        inputs.CreateTrainingFileInput(name="typed_client", conversation_ids=ids[:3])
    )
    assert created.create_training_file.user_errors == []
    file = created.create_training_file.training_file
    assert file is not None
    assert (file.version, file.conversation_count) == (1, 3)
    assert file.trainable_pair_count == sum(rules.trainable(s.document) for s in chosen[:3])
    assert type(file.jsonl_file_size) is int and file.jsonl_file_size > 0
    assert file.created_at.utcoffset() is not None and file.created_at <= datetime.now(UTC)

    added = await gql.add_conversations(
        inputs.AddConversationsInput(training_file_id=file.id, conversation_ids=ids[3:])
    )
    assert added.add_conversations.user_errors == []
    after = added.add_conversations.training_file
    assert after is not None
    assert (after.id, after.version, after.conversation_count) == (file.id, 2, 5)
    assert type(after.jsonl_file_size) is int and after.jsonl_file_size > file.jsonl_file_size
    assert isinstance(after.last_updated_at, datetime)
    expected_quality = rules.quality(s.document for s in chosen)
    assert after.quality_summary.maximum == float(expected_quality.maximum or 0)

    # downloadUrl: a link whose bytes are as many as the typed size says.
    link = await gql.download_url(
        inputs.DownloadUrlInput(training_file_id=file.id, format=enums.TrainingFileFormat.JSONL)
    )
    download = link.download_url
    assert download.user_errors == [] and download.url is not None
    assert download.expires_in_seconds == 3600
    assert download.filename == "typed_client.jsonl"
    assert isinstance(download.expires_at, datetime) and download.expires_at > datetime.now(UTC)
    body = await client.get(download.url)
    assert body.status_code == 200
    assert len(body.content) == after.jsonl_file_size

    # trainingFiles with nested distributions (the README's curl example).
    page = await gql.list_training_files(first=10)
    assert page.training_files.total_count == 1
    listed_file = page.training_files.edges[0].node
    assert listed_file.status is enums.TrainingFileStatus.ACTIVE
    assert listed_file.jsonl_file_size == after.jsonl_file_size
    personas = {p.key: p.count for p in listed_file.scaffolding_distribution.personas}
    assert personas == rules.file_distribution([s.document for s in chosen])["personas"]

    # node(id:): the concrete type behind an id, typed.
    as_node = (await gql.node(id=file.id)).node
    assert isinstance(as_node, python_client.NodeNodeTrainingFile)
    assert (as_node.name, as_node.version) == ("typed_client", 2)
    conversation = (await gql.node(id=ids[0])).node
    assert isinstance(conversation, python_client.NodeNodeConversation)
    assert conversation.enriched_file_size == len(chosen[0].path.read_bytes())
    assert (await gql.node(id=str(USER))).node is None


async def test_python_client_user_errors_are_enum_members(
    python_client: ModuleType,
    client: httpx.AsyncClient,
    db: Database,
    owner_writers: WriterPool,
    storage: Storage,
    tmp_path: Path,
) -> None:
    sources = await import_thirty(owner_writers, storage, tmp_path)
    gql = python_client.Client(url="/graphql", http_client=client)
    codes = python_client.enums
    inputs = python_client.input_types
    first = await gql.create_training_file(
        inputs.CreateTrainingFileInput(name="Q3 seed", conversation_ids=[str(sources[0].id)])
    )
    assert first.create_training_file.user_errors == []

    taken = await gql.create_training_file(
        inputs.CreateTrainingFileInput(
            name="q3 SEED", conversation_ids=[str(sources[1].id), "not-a-uuid"]
        )
    )
    errors = {e.code: e for e in taken.create_training_file.user_errors}
    assert set(errors) == {
        codes.TrainingFileErrorCode.NAME_TAKEN,
        codes.TrainingFileErrorCode.INVALID_ID,
    }
    assert all(isinstance(code, codes.TrainingFileErrorCode) for code in errors)
    assert taken.create_training_file.training_file is None

    missing = await gql.download_url(
        inputs.DownloadUrlInput(training_file_id=str(USER), format=codes.TrainingFileFormat.JSON)
    )
    assert [e.code for e in missing.download_url.user_errors] == [codes.DownloadErrorCode.NOT_FOUND]


@pytest.mark.parametrize(
    ("value", "accepted"),
    [(5_000_000_000, True), (2**53 - 1, True), ("5000000000", False), (True, False), (1.5, False)],
)
def test_python_client_bigint_is_a_whole_json_number(
    python_client: ModuleType, value: Any, accepted: bool
) -> None:
    parse = python_client.custom_scalars.parse_bigint
    if accepted:
        assert parse(value) == value
    else:
        with pytest.raises(ValueError, match="BigInt"):
            parse(value)


def test_python_client_datetime_needs_an_offset(python_client: ModuleType) -> None:
    parse = python_client.custom_scalars.parse_datetime
    assert parse("2026-12-01T22:01:08.123456Z") == datetime(2026, 12, 1, 22, 1, 8, 123456, UTC)
    with pytest.raises(ValueError, match="offset"):
        parse("2026-12-01T22:01:08")
    with pytest.raises(ValueError, match="RFC 3339"):
        parse(1764626468)


def test_python_client_generation_fails_on_a_removed_field(tmp_path: Path) -> None:
    _require_ariadne_codegen()
    schema = _changed(SCHEMA, '"""Size in bytes of the JSONL."""\n  jsonlFileSize: BigInt\n', "")
    result = _generate_python_client(_layout(tmp_path, schema))
    assert result.returncode != 0, _output(result)
    assert "jsonlFileSize" in result.stdout + result.stderr, _output(result)
