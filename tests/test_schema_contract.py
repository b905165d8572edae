"""What typed clients rely on in the schema: a description on everything, scalars that say what
they are, closed error enums per mutation family, and error codes the README documents."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
)

from graphql_api import errors
from graphql_api.errors import MEANING, ErrorCode
from graphql_api.graphql.enums import DownloadErrorCode, ImportErrorCode, TrainingFileErrorCode
from graphql_api.graphql.schema import build_schema

PROJECT = Path(__file__).resolve().parents[1]
BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}


def _schema() -> GraphQLSchema:
    return build_schema()._schema


def _undescribed(schema: GraphQLSchema) -> Iterator[str]:
    for name, type_ in schema.type_map.items():
        if name.startswith("__") or name in BUILT_IN:
            continue
        if not type_.description:
            yield f"type {name}"
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in type_.fields.items():
                if not field.description:
                    yield f"field {name}.{field_name}"
                for argument_name, argument in getattr(field, "args", {}).items():
                    if not argument.description:
                        yield f"argument {name}.{field_name}({argument_name})"
        if isinstance(type_, GraphQLEnumType):
            for value_name, value in type_.values.items():
                if not value.description:
                    yield f"enum value {name}.{value_name}"


def test_every_type_field_argument_input_field_and_enum_value_is_described() -> None:
    assert list(_undescribed(_schema())) == []


def test_the_walk_finds_what_is_missing() -> None:
    # The walk itself must be able to fail: strip one description of each kind and look.
    schema = _schema()
    query = schema.query_type
    assert query is not None
    query.fields["trainingFile"].args["id"].description = None
    status = schema.type_map["TrainingFileStatus"]
    assert isinstance(status, GraphQLEnumType)
    status.values["ACTIVE"].description = None
    assert set(_undescribed(schema)) == {
        "argument Query.trainingFile(id)",
        "enum value TrainingFileStatus.ACTIVE",
    }


def test_every_custom_scalar_says_how_it_is_written() -> None:
    scalars = [
        t
        for name, t in _schema().type_map.items()
        if isinstance(t, GraphQLScalarType) and name not in BUILT_IN and not name.startswith("__")
    ]
    assert {s.name for s in scalars} == {"BigInt", "Date", "DateTime", "Upload"}
    assert all(s.specified_by_url and s.specified_by_url.startswith("https://") for s in scalars)


def test_page_size_argument_documents_its_default_and_maximum() -> None:
    query = _schema().query_type
    assert query is not None
    description = query.fields["trainingFiles"].args["first"].description
    assert description is not None and "20 when omitted" in description and "100" in description


def test_user_error_codes_are_closed_enums_per_family() -> None:
    schema = _schema()
    for payload, enum_name in [
        ("TrainingFileUserError", "TrainingFileErrorCode"),
        ("DownloadUserError", "DownloadErrorCode"),
        ("ImportUserError", "ImportErrorCode"),
    ]:
        type_ = schema.type_map[payload]
        assert isinstance(type_, GraphQLObjectType)
        assert str(type_.fields["code"].type) == f"{enum_name}!"
        assert [i.name for i in type_.interfaces] == ["UserError"]
    interface = schema.type_map["UserError"]
    assert isinstance(interface, GraphQLInterfaceType)
    assert set(interface.fields) == {"field", "message"}


def test_family_codes_are_error_codes_and_every_code_has_a_meaning() -> None:
    assert set(MEANING) == set(ErrorCode)
    for family in (TrainingFileErrorCode, DownloadErrorCode, ImportErrorCode):
        assert {member.value for member in family} <= {code.value for code in ErrorCode}


def _codes_named(tree: ast.AST) -> set[str]:
    """The codes the user errors raised in a piece of code can carry: every `ErrorCode.X` it
    names, and the class code of every user error it constructs (`NotFound(...)`)."""
    codes = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "ErrorCode"
        ):
            codes.add(node.attr)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            kind = getattr(errors, node.func.id, None)
            given = any(keyword.arg in ("code", "problems") for keyword in node.keywords)
            if isinstance(kind, type) and issubclass(kind, errors.UserError) and not given:
                codes.add(kind.code.name)
    return codes


def _functions(relative: str) -> dict[str, ast.AST]:
    tree = ast.parse((PROJECT / relative).read_text())
    return {
        node.name: node
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def test_each_family_lists_every_code_its_service_raises() -> None:
    """Authentication, permission and availability errors are not user errors of a payload
    (they stay GraphQL errors), so they are left out of the families."""
    not_in_payloads = {"UNAUTHENTICATED", "FORBIDDEN"}
    service = _functions("graphql_api/aggregation/service.py")
    shared = set().union(*map(_codes_named, _functions("graphql_api/inputs.py").values()))
    download = _codes_named(service.pop("download_target")) | shared
    training_file = shared.union(
        *map(_codes_named, service.values()),
        *map(_codes_named, _functions("graphql_api/aggregation/requests.py").values()),
    )
    assert {"NOT_READY", "NOT_FOUND"} <= download, "has download_target changed its errors?"
    assert {"NAME_TAKEN", "FILE_NOT_ACTIVE"} <= training_file
    assert training_file - not_in_payloads - set(TrainingFileErrorCode.__members__) == set()
    assert download - not_in_payloads - set(DownloadErrorCode.__members__) == set()


def test_the_import_family_lists_every_code_an_upload_can_get() -> None:
    """Busy (an import slot not free in time) stays a GraphQL error, as availability errors do;
    UNSUPPORTED_MEDIA_TYPE is the REST route's (rest_imports.py), which GraphQL never sees."""
    uploads = _functions("graphql_api/conversations/uploads.py")
    resolver = _functions("graphql_api/graphql/imports.py")["import_conversations"]
    codes = set().union(_codes_named(resolver), *map(_codes_named, uploads.values()))
    assert {"TOO_MANY_FILES", "FILE_TOO_LARGE", "IN_TRAINING_FILE", "BUSY"} <= codes
    assert codes - {"BUSY"} - set(ImportErrorCode.__members__) == set()


def test_readme_documents_every_error_code() -> None:
    readme = (PROJECT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.MULTILINE))
    assert {code.value for code in ErrorCode} - documented == set()
