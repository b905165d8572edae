"""Which documents may be compiled, and compiling one request of them.

A document is trusted once Strawberry has parsed and validated it as a query with every rule
and limit the schema has (depth, aliases, tokens): later requests with the same text are
compiled with their own variables. Anything the compiler does not do, and any argument
Strawberry would refuse, falls back to Strawberry, which gives the same result or the error.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import strawberry
from graphql import DocumentNode, FragmentDefinitionNode, OperationType, get_operation_ast
from graphql.execution.values import get_variable_values

from ...errors import UserError
from ...observability.metrics import COMPILED_READS
from .render import Compilation, render_fields
from .selection import Document
from .sql import NotCompilable, Statement


@dataclass(frozen=True)
class CompiledQuery:
    sql: str
    params: list[object]
    operation_name: str | None = None


class CompiledReads:
    def __init__(self, schema: strawberry.Schema, max_documents: int = 256) -> None:
        self._schema = schema
        self._max_documents = max_documents
        self._trusted: OrderedDict[str, DocumentNode] = OrderedDict()
        # How requests of trusted documents went (for operators and tests): compiled, then
        # answered by their statement or failed (and answered by Strawberry); or declined.
        self.compiled = 0
        self.answered = 0
        self.failed = 0
        self.declined = 0

    def trust(self, query: str, document: DocumentNode) -> None:
        """`document` (the parse of `query`) passed Strawberry's validation as a query."""
        self._trusted[query] = document
        self._trusted.move_to_end(query)
        while len(self._trusted) > self._max_documents:
            self._trusted.popitem(last=False)

    def compile(
        self,
        query: str,
        operation_name: str | None,
        variables: dict[str, Any] | None,
        user_id: UUID,
    ) -> CompiledQuery | None:
        """The statement answering this request, or None to let Strawberry answer it."""
        document = self._trusted.get(query)
        if document is None:
            return None
        compiled = self._compile(document, operation_name, variables, user_id)
        if compiled is None:
            self.declined += 1
            COMPILED_READS.labels("declined").inc()
        else:
            self.compiled += 1
        return compiled

    def _compile(
        self,
        document: DocumentNode,
        operation_name: str | None,
        variables: dict[str, Any] | None,
        user_id: UUID,
    ) -> CompiledQuery | None:
        operation = get_operation_ast(document, operation_name)
        if operation is None or operation.operation is not OperationType.QUERY:
            return None
        coerced = get_variable_values(
            self._schema._schema, operation.variable_definitions or (), variables or {}
        )
        if isinstance(coerced, list):  # the variables do not fit their types
            return None
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        comp = Compilation(self._schema, Document(fragments, coerced), user_id, Statement())
        query_type = self._schema._schema.query_type
        assert query_type is not None
        try:
            data = render_fields(query_type, [operation.selection_set], "", comp)
        except (NotCompilable, UserError):
            return None
        name = operation.name.value if operation.name else None
        return CompiledQuery(f"SELECT ({data})::text", comp.statement.params, name)
