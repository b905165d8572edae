"""graphql_api.inputs: checks on raw request values shared by GraphQL and REST."""

from __future__ import annotations

import pytest

from graphql_api.errors import InvalidInput, Problem
from graphql_api.inputs import json_type, storable, unstorable


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("\x00", "must not contain NUL characters (U+0000)"),
        ("key\x00", "must not contain NUL characters (U+0000)"),
        ("\ud800", "must not contain unpaired surrogates (U+D800 to U+DFFF)"),
        ("a\udc00b", "must not contain unpaired surrogates (U+D800 to U+DFFF)"),
        ("", None),
        ("anxious_planner", None),
        ("日本 😀 \x01 \u202e", None),  # odd, but PostgreSQL stores them
    ],
)
def test_unstorable(text: str, reason: str | None) -> None:
    assert unstorable(text) == reason


def test_storable_names_the_field() -> None:
    assert storable(None, "filter.personaKey") is None
    assert storable("x", "filter.personaKey") == "x"
    with pytest.raises(InvalidInput) as caught:
        storable("x\x00", "filter.personaKey")
    message = "filter.personaKey must not contain NUL characters (U+0000)"
    assert caught.value.message == message
    assert caught.value.problems == (Problem("BAD_USER_INPUT", message, "filter.personaKey"),)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ({}, "an object"),
        ([], "an array"),
        ("", "a string"),
        (True, "a boolean"),
        (5, "a number"),
        (1.5, "a number"),
        (None, "null"),
    ],
)
def test_json_type(value: object, name: str) -> None:
    assert json_type(value) == name
