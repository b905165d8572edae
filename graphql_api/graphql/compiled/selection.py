"""The fields a selection asks for, as the GraphQL executor collects them (spec §6.3.2):
directives applied, fragments expanded, fields of one response key merged."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLIncludeDirective,
    GraphQLObjectType,
    GraphQLSkipDirective,
    InlineFragmentNode,
    SelectionSetNode,
)
from graphql.execution.values import VariableValues, get_directive_values

from .sql import NotCompilable


@dataclass
class Selected:
    """One response key: the field it names and every node that selects it."""

    key: str
    name: str
    nodes: list[FieldNode]
    field: GraphQLField | None  # None for __typename

    @property
    def selection_sets(self) -> list[SelectionSetNode]:
        return [n.selection_set for n in self.nodes if n.selection_set is not None]


@dataclass(frozen=True)
class Document:
    fragments: dict[str, FragmentDefinitionNode]
    variables: VariableValues


def collect(
    type_: GraphQLObjectType, selection_sets: Iterable[SelectionSetNode], document: Document
) -> list[Selected]:
    selected: dict[str, Selected] = {}
    for selection_set in selection_sets:
        _collect_into(selected, type_, selection_set, document, set())
    return list(selected.values())


def _collect_into(
    selected: dict[str, Selected],
    type_: GraphQLObjectType,
    selection_set: SelectionSetNode,
    document: Document,
    visited: set[str],
) -> None:
    for selection in selection_set.selections:
        if not _included(selection, document):
            continue
        if isinstance(selection, FieldNode):
            _add_field(selected, type_, selection)
        elif isinstance(selection, InlineFragmentNode):
            if _applies(selection.type_condition, type_):
                _collect_into(selected, type_, selection.selection_set, document, visited)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = document.fragments.get(name)
            if name in visited or fragment is None:
                continue
            visited.add(name)
            if _applies(fragment.type_condition, type_):
                _collect_into(selected, type_, fragment.selection_set, document, visited)


def _add_field(selected: dict[str, Selected], type_: GraphQLObjectType, node: FieldNode) -> None:
    name = node.name.value
    key = node.alias.value if node.alias else name
    if key in selected:
        selected[key].nodes.append(node)
        return
    if name == "__typename":
        selected[key] = Selected(key, name, [node], None)
        return
    if name.startswith("__") or name not in type_.fields:
        raise NotCompilable(f"field {type_.name}.{name}")
    selected[key] = Selected(key, name, [node], type_.fields[name])


def _applies(condition: Any, type_: GraphQLObjectType) -> bool:
    if condition is None:
        return True
    wanted = condition.name.value
    return wanted == type_.name or any(i.name == wanted for i in type_.interfaces)


def _included(selection: Any, document: Document) -> bool:
    skip = get_directive_values(GraphQLSkipDirective, selection, document.variables)
    if skip and skip.get("if") is True:
        return False
    include = get_directive_values(GraphQLIncludeDirective, selection, document.variables)
    return not (include and include.get("if") is False)
