"""graphql_api.conversations.parsing: bytes to a document, or blockers saying why not."""

from __future__ import annotations

import json

import pytest

from graphql_api.conversations.analysis import analyze
from graphql_api.conversations.issues import Issues
from graphql_api.conversations.parsing import parse

from .conversation_documents import blocked, document, keys


def test_a_document_and_its_text() -> None:
    issues = Issues()
    parsed = parse(b'{"a": [1, 2.5, "\xc3\xa9"]}', issues)
    assert parsed is not None
    assert parsed.document == {"a": [1, 2.5, "é"]}
    assert parsed.text == '{"a": [1, 2.5, "é"]}'
    assert issues.report().to_json()["blockers"] == []


def test_not_json() -> None:
    analysis = blocked(b'{"training_pairs": [', "not_json")
    assert "line 1" in analysis.report.blockers[0].message
    blocked(b"", "not_json")


def test_invalid_utf8() -> None:
    message = blocked(b'{"training_pairs": "\xff\xfe"}', "not_utf8").report.blockers[0].message
    assert "byte 20" in message


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e999}'])
def test_non_finite_numbers(raw: bytes) -> None:
    blocked(raw, "unsupported_number")


def test_json_null_is_a_document_not_a_failure() -> None:
    parsed = parse(b"null", Issues())
    assert parsed is not None and parsed.document is None


def test_byte_order_mark_and_duplicate_keys_warn() -> None:
    raw = "\ufeff".encode() + json.dumps(document()).encode()
    raw = raw.replace(b'{"dataset_name"', b'{"notes": "x", "dataset_name"', 1)
    analysis = analyze(raw)
    assert analysis.report.ok
    assert keys(analysis.report.warnings) == {("byte_order_mark", "$"), ("duplicate_key", "$")}
    assert analysis.title == "Mortgage Clarity"  # the last "notes" was kept
