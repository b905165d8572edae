"""Each GraphQL field of the read path as the SQL expression that computes its JSON value.

Mirrors the resolvers (`queries.py`, `nodes.py`, `types.py`): the same argument conversion
and checks (Strawberry's own `convert_arguments`, then `to_filter`, `check_page_size`,
`decode_after`), the same WHERE clauses (from `db/`), the same orders, cursors and rounding.
A test runs a corpus of operations through both and compares the results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import strawberry
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    SelectionSetNode,
)
from graphql.execution.values import get_argument_values
from strawberry.types.arguments import convert_arguments

from ...db import conversations as conversation_rows
from ...inputs import parse_uuid
from ...pagination import check_page_size, decode_after, decode_position
from ..queries import ConversationFilterInput, TrainingFileFilterInput
from ..types import UNKNOWN_KEY
from .selection import Document, Selected, collect
from .sql import (
    NotCompilable,
    Statement,
    enum_name,
    json_array,
    json_object,
    list_cursor,
    literal,
    number,
    percentage,
    position_cursor,
    timestamp,
)


@dataclass
class Compilation:
    schema: strawberry.Schema
    document: Document
    user_id: UUID
    statement: Statement

    def arguments(self, selected: Selected) -> dict[str, Any]:
        assert selected.field is not None
        raw = get_argument_values(selected.field, selected.nodes[0], self.document.variables)
        definition = selected.field.extensions["strawberry-definition"]
        converted: dict[str, Any] = convert_arguments(
            raw,
            definition.arguments,
            self.schema.schema_converter.scalar_registry,
            self.schema.config,
        )
        return converted


Field = Callable[[Selected, str, Compilation], str]


def render_object(type_: GraphQLObjectType, selected: Selected, row: str, comp: Compilation) -> str:
    """The JSON object of `type_` for the row `row`, with the sub-selection of `selected`."""
    return render_fields(type_, selected.selection_sets, row, comp)


def render_fields(
    type_: GraphQLObjectType, selection_sets: list[SelectionSetNode], row: str, comp: Compilation
) -> str:
    fields = _FIELDS.get(type_.name)
    if fields is None:
        raise NotCompilable(f"type {type_.name}")
    pairs = []
    for sub in collect(type_, selection_sets, comp.document):
        if sub.field is None:
            pairs.append((sub.key, literal(type_.name)))
            continue
        render = fields.get(sub.name)
        if render is None:
            raise NotCompilable(f"field {type_.name}.{sub.name}")
        pairs.append((sub.key, render(sub, row, comp)))
    return json_object(pairs)


def _named(type_: GraphQLOutputType) -> GraphQLObjectType:
    while isinstance(type_, GraphQLNonNull | GraphQLList):
        type_ = type_.of_type
    if not isinstance(type_, GraphQLObjectType):
        raise NotCompilable(f"type {type_}")
    return type_


def _type_of(selected: Selected) -> GraphQLObjectType:
    assert selected.field is not None
    return _named(selected.field.type)


# -- scalars ------------------------------------------------------------------------------------


def _column(name: str, convert: Callable[[str], str] = lambda c: c) -> Field:
    return lambda selected, row, comp: convert(f"{row}.{name}")


def _text(name: str) -> Field:
    return _column(name, lambda c: f"({c})::text")


def _date(name: str) -> Field:
    return _column(name, lambda c: f"to_char({c}, 'YYYY-MM-DD')")


# -- connections --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of a list: `rows` selects the candidate rows with their order as `_n` (1..),
    at most `limit + 1` of them (one more tells whether there is a next page)."""

    rows: str
    limit: int
    cursor: Callable[[str], str]
    has_previous: bool
    # Built only when asked for: building it adds parameters to the statement.
    total: Callable[[], str]


def render_connection(selected: Selected, page: Page, comp: Compilation) -> str:
    connection = _type_of(selected)
    name = comp.statement.alias("page")

    def over_rows(sub: Selected, render_row: Callable[[Selected, str], str]) -> str:
        row = comp.statement.alias("r")
        source = f"{name} {row} WHERE {row}._n <= {page.limit}"
        return json_array(render_row(sub, row), source, f"{row}._n")

    def edge(sub: Selected, row: str) -> str:
        return _edge(_type_of(sub), sub, row, page, comp)

    def node(sub: Selected, row: str) -> str:
        return render_object(_type_of(sub), sub, row, comp)

    pairs = []
    for sub in collect(connection, selected.selection_sets, comp.document):
        if sub.field is None:
            pairs.append((sub.key, literal(connection.name)))
        elif sub.name == "edges":
            pairs.append((sub.key, over_rows(sub, edge)))
        elif sub.name == "nodes":
            pairs.append((sub.key, over_rows(sub, node)))
        elif sub.name == "pageInfo":
            pairs.append((sub.key, _page_info(_type_of(sub), sub, name, page, comp)))
        elif sub.name == "totalCount":
            pairs.append((sub.key, page.total()))
        else:
            raise NotCompilable(f"field {connection.name}.{sub.name}")
    return f"(WITH {name} AS ({page.rows}) SELECT {json_object(pairs)})"


def _edge(
    edge: GraphQLObjectType, selected: Selected, row: str, page: Page, comp: Compilation
) -> str:
    pairs = []
    for sub in collect(edge, selected.selection_sets, comp.document):
        if sub.field is None:
            pairs.append((sub.key, literal(edge.name)))
        elif sub.name == "cursor":
            pairs.append((sub.key, page.cursor(row)))
        elif sub.name == "node":
            pairs.append((sub.key, render_object(_type_of(sub), sub, row, comp)))
        else:
            raise NotCompilable(f"field {edge.name}.{sub.name}")
    return json_object(pairs)


def _page_info(
    info: GraphQLObjectType, selected: Selected, name: str, page: Page, comp: Compilation
) -> str:
    row = comp.statement.alias("r")
    shown = f"least((SELECT count(*) FROM {name}), {page.limit})"
    values = {
        "hasNextPage": f"((SELECT count(*) FROM {name}) > {page.limit})",
        "hasPreviousPage": "true" if page.has_previous else "false",
        "startCursor": f"(SELECT {page.cursor(row)} FROM {name} {row} WHERE {row}._n = 1 AND {page.limit} > 0)",
        "endCursor": f"(SELECT {page.cursor(row)} FROM {name} {row} WHERE {row}._n = {shown})",
    }
    pairs = []
    for sub in collect(info, selected.selection_sets, comp.document):
        value = literal(info.name) if sub.field is None else values.get(sub.name)
        if value is None:
            raise NotCompilable(f"field {info.name}.{sub.name}")
        pairs.append((sub.key, value))
    return json_object(pairs)


# -- the lists ----------------------------------------------------------------------------------

_NEWEST_FIRST = "ORDER BY created_at DESC, {id} DESC"


def _keyset_page(
    table: str,
    id_column: str,
    where_sql: str,
    where_values: Sequence[object],
    first: Any,
    after: Any,
    comp: Compilation,
) -> Page:
    """A newest-first page of `table` as `keyset_page` reads it (same WHERE, order, limit)."""
    limit = check_page_size(first)
    cursor = decode_after(after)
    st = comp.statement
    where = st.fragment(where_sql, where_values)
    keyset = ""
    if cursor is not None:
        after_sort, after_id = st.param(cursor.sort_at, "timestamptz"), st.param(cursor.id, "uuid")
        keyset = f"AND (created_at, {id_column}) < ({after_sort}, {after_id})"
    order = _NEWEST_FIRST.format(id=id_column)
    rows = (
        f"SELECT {table}.*, row_number() OVER ({order}) AS _n FROM {table} {where} {keyset} "
        f"{order} LIMIT {limit + 1}"
    )
    return Page(
        rows=rows,
        limit=limit,
        cursor=lambda row: list_cursor(f"{row}.created_at", f"{row}.{id_column}"),
        has_previous=cursor is not None,
        total=lambda: f"(SELECT count(*) FROM {table} {st.fragment(where_sql, where_values)})",
    )


def _training_files(selected: Selected, row: str, comp: Compilation) -> str:
    args = comp.arguments(selected)
    where = (args["filter"] or TrainingFileFilterInput()).to_filter().clause()
    page = _keyset_page(
        "training_files", "id", where.sql, where.params, args["first"], args["after"], comp
    )
    return render_connection(selected, page, comp)


def _conversations(selected: Selected, row: str, comp: Compilation) -> str:
    args = comp.arguments(selected)
    filter_input: ConversationFilterInput | None = args["filter"]
    where = (
        filter_input.to_filter() if filter_input else conversation_rows.ConversationFilter()
    ).clause()
    page = _keyset_page(
        "conversations",
        "conversation_id",
        where.sql,
        where.params,
        args["first"],
        args["after"],
        comp,
    )
    return render_connection(selected, page, comp)


def _file_conversations(selected: Selected, row: str, comp: Compilation) -> str:
    args = comp.arguments(selected)
    limit = check_page_size(args["first"])
    after = decode_position(args["after"])
    rows = (
        "SELECT c.*, j.position, row_number() OVER (ORDER BY j.position) AS _n "
        "FROM training_file_conversations j JOIN conversations c USING (conversation_id) "
        f"WHERE j.training_file_id = {row}.id AND j.position > {after} "
        f"ORDER BY j.position LIMIT {limit + 1}"
    )
    page = Page(
        rows=rows,
        limit=limit,
        cursor=lambda r: position_cursor(f"{r}.position"),
        has_previous=after >= 0,
        total=lambda: f"{row}.conversation_count",
    )
    return render_connection(selected, page, comp)


def _files_of_conversation(selected: Selected, row: str, comp: Compilation) -> str:
    file = comp.statement.alias("f")
    junction = comp.statement.alias("j")
    source = (
        f"training_file_conversations {junction} JOIN training_files {file} "
        f"ON {file}.id = {junction}.training_file_id "
        f"WHERE {junction}.conversation_id = {row}.conversation_id"
    )
    element = render_object(_type_of(selected), selected, file, comp)
    return json_array(element, source, f"{file}.created_at DESC, {file}.id DESC")


def _one(table: str, id_column: str) -> Field:
    def render(selected: Selected, row: str, comp: Compilation) -> str:
        wanted = parse_uuid(comp.arguments(selected)["id"], "id")
        alias = comp.statement.alias("o")
        element = render_object(_type_of(selected), selected, alias, comp)
        where = f"{alias}.{id_column} = {comp.statement.param(wanted, 'uuid')}"
        return f"(SELECT {element} FROM {table} {alias} WHERE {where})"

    return render


def _viewer(selected: Selected, row: str, comp: Compilation) -> str:
    user = comp.statement.param(str(comp.user_id), "text")
    viewer = _type_of(selected)
    pairs = []
    for sub in collect(viewer, selected.selection_sets, comp.document):
        pairs.append((sub.key, literal(viewer.name) if sub.field is None else user))
    return json_object(pairs)


# -- nested objects of a row -----------------------------------------------------------------


def _distribution_entries(kind: str) -> Field:
    """`DistributionEntry`s of one kind: the row's stored distribution in its order, then the
    `unknown` entry of the conversations it does not count (as `types.scaffolding_distribution`)."""

    def render(selected: Selected, row: str, comp: Compilation) -> str:
        st = comp.statement
        entries, element, order, counted, missing_row = (
            st.alias(stem) for stem in ("d", "e", "o", "c", "m")
        )
        stored = f"jsonb_array_elements(coalesce({row}.scaffolding_distribution -> '{kind}', '[]'))"
        missing = (
            f"{row}.conversation_count - coalesce((SELECT sum(({counted} ->> 'count')::int) "
            f"FROM {stored} AS {st.alias('s')}({counted})), 0)"
        )
        source = (
            f"(SELECT {element} ->> 'key' AS key, {element} ->> 'name' AS name, "
            f"({element} ->> 'count')::bigint AS count, false AS unknown, {order} "
            f"FROM {stored} WITH ORDINALITY AS {st.alias('k')}({element}, {order}) "
            f"UNION ALL SELECT {literal(UNKNOWN_KEY)}, NULL, {missing_row}.n, true, 0 "
            f"FROM (SELECT {missing} AS n) AS {missing_row} WHERE {missing_row}.n > 0) AS {entries}"
        )
        values = {
            "key": f"{entries}.key",
            "name": f"{entries}.name",
            "count": f"{entries}.count",
            "percentage": percentage(f"{entries}.count", f"{row}.conversation_count"),
            "unknown": f"{entries}.unknown",
        }
        entry_type = _type_of(selected)
        pairs = []
        for sub in collect(entry_type, selected.selection_sets, comp.document):
            value = literal(entry_type.name) if sub.field is None else values.get(sub.name)
            if value is None:
                raise NotCompilable(f"field {entry_type.name}.{sub.name}")
            pairs.append((sub.key, value))
        return json_array(json_object(pairs), source, f"{entries}.unknown, {entries}.{order}")

    return render


def _issues(kind: str) -> Field:
    def render(selected: Selected, row: str, comp: Compilation) -> str:
        issue = comp.statement.alias("i")
        order = comp.statement.alias("o")
        source = (
            f"jsonb_array_elements(coalesce({row}.validation_report -> '{kind}', '[]'))"
            f" WITH ORDINALITY AS {comp.statement.alias('v')}({issue}, {order})"
        )
        return json_array(render_object(_type_of(selected), selected, issue, comp), source, order)

    return render


def _issue_field(name: str) -> Field:
    return lambda selected, row, comp: f"({row} ->> '{name}')"


def _same_row(selected: Selected, row: str, comp: Compilation) -> str:
    """An object whose fields are more columns of the same row (qualitySummary, ...)."""
    return render_object(_type_of(selected), selected, row, comp)


_CONVERSATION: dict[str, Field] = {
    "id": _text("conversation_id"),
    "title": _column("title"),
    "personaKey": _column("persona_key"),
    "personaName": _column("persona_name"),
    "emotionalArcKey": _column("emotional_arc_key"),
    "emotionalArcName": _column("emotional_arc_name"),
    "trainingTopicKey": _column("training_topic_key"),
    "trainingTopicName": _column("training_topic_name"),
    "qualityScore": _column("quality_score", number),
    "empathyScore": _column("empathy_score", number),
    "clarityScore": _column("clarity_score", number),
    "appropriatenessScore": _column("appropriateness_score", number),
    "brandVoiceAlignmentScore": _column("brand_voice_alignment", number),
    "brandVoiceAlignment": _column("brand_voice_alignment", number),  # deprecated alias
    "tier": _column("tier", enum_name),
    "enrichmentStatus": _column("enrichment_status", enum_name),
    "enrichedFileSize": _column("enriched_file_size"),
    "sourceCreatedDate": _date("source_created_date"),
    "totalTurns": _column("total_turns"),
    "pairCount": _column("pair_count"),
    "trainablePairCount": _column("trainable_pair_count"),
    "humanReviewedCount": _column("human_reviewed_count"),
    "validation": _same_row,
    "createdAt": _column("created_at", timestamp),
    "updatedAt": _column("updated_at", timestamp),
    "trainingFiles": _files_of_conversation,
}

_TRAINING_FILE: dict[str, Field] = {
    "id": _text("id"),
    "name": _column("name"),
    "description": _column("description"),
    "status": _column("status", enum_name),
    "version": _column("version"),
    "conversationCount": _column("conversation_count"),
    "pairCount": _column("total_training_pairs"),
    "trainablePairCount": _column("trainable_pairs"),
    "totalTrainingPairs": _column("total_training_pairs"),  # deprecated alias
    "trainablePairs": _column("trainable_pairs"),  # deprecated alias
    "jsonFileSize": _column("json_file_size"),
    "jsonlFileSize": _column("jsonl_file_size"),
    "openaiChatFileSize": _column("openai_chat_file_size"),
    "hfDatasetFileSize": _column("hf_dataset_file_size"),
    "qualitySummary": _same_row,
    "scaffoldingDistribution": _same_row,
    "createdBy": _text("created_by"),
    "createdAt": _column("created_at", timestamp),
    "updatedAt": _column("updated_at", timestamp),
    "lastUpdatedAt": _column("last_updated_at", timestamp),
    "conversations": _file_conversations,
}

_FIELDS: dict[str, dict[str, Field]] = {
    "Query": {
        "trainingFiles": _training_files,
        "trainingFile": _one("training_files", "id"),
        "conversations": _conversations,
        "conversation": _one("conversations", "conversation_id"),
        "viewer": _viewer,
    },
    "TrainingFile": _TRAINING_FILE,
    "Conversation": _CONVERSATION,
    "QualitySummary": {
        "average": _column("avg_quality_score", number),
        "minimum": _column("min_quality_score", number),
        "maximum": _column("max_quality_score", number),
        "humanReviewedCount": _column("human_reviewed_count"),
        "humanReviewedPercentage": lambda s, row, c: percentage(
            f"{row}.human_reviewed_count", f"{row}.total_training_pairs"
        ),
    },
    "ScaffoldingDistribution": {
        "personas": _distribution_entries("personas"),
        "emotionalArcs": _distribution_entries("emotional_arcs"),
        "trainingTopics": _distribution_entries("training_topics"),
    },
    "ValidationReport": {
        "valid": _column(
            "validation_report", lambda c: f"coalesce(({c} ->> 'valid')::boolean, true)"
        ),
        "blockers": _issues("blockers"),
        "warnings": _issues("warnings"),
    },
    "ValidationIssue": {name: _issue_field(name) for name in ("code", "path", "message")},
}
