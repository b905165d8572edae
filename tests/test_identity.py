"""graphql_api.conversations.identity: the conversation id from dataset_name or the content."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any
from uuid import UUID

import pytest

from graphql_api.conversations.analysis import analyze
from graphql_api.conversations.identity import (
    CONVERSATION_ID_NAMESPACE,
    conversation_id_from,
    derive_conversation_id,
)

from .conversation_documents import CONVERSATION_ID, analyzed, blocked, document, keys


def _without_dataset_name() -> dict[str, Any]:
    doc = document()
    del doc["dataset_metadata"]["dataset_name"]
    return doc


def test_the_id_is_the_dataset_name_uuid() -> None:
    analysis = analyzed(document())
    assert analysis.conversation_id == UUID(CONVERSATION_ID)
    assert analysis.dataset_name == f"fp_conversation_{CONVERSATION_ID}"
    assert conversation_id_from(document()) == UUID(CONVERSATION_ID)


def test_the_derived_id_is_stable_forever() -> None:
    # Pinned: a change would give every file without a dataset_name a new identity. It is
    # uuid5 of the canonical text, in the namespace named after the schema's $id.
    assert (
        uuid.uuid5(
            uuid.NAMESPACE_URL, "https://brightrun.ai/schemas/emotional-lora-individual-v4.0.json"
        )
        == CONVERSATION_ID_NAMESPACE
    )
    assert derive_conversation_id({"b": [1], "a": "é"}) == uuid.uuid5(
        CONVERSATION_ID_NAMESPACE, '{"a":"é","b":[1]}'
    )
    assert derive_conversation_id({"a": 1}) == UUID("2b06ffd1-ac46-5262-9f8a-496f72775187")


def test_derived_id_ignores_whitespace_and_key_order() -> None:
    doc = _without_dataset_name()
    compact = analyze(json.dumps(doc, separators=(",", ":")).encode())
    pretty = analyze(json.dumps(doc, indent=4, sort_keys=True).encode())
    assert compact.report.ok
    assert compact.conversation_id is not None
    assert compact.conversation_id == pretty.conversation_id == derive_conversation_id(doc)
    assert compact.conversation_id == conversation_id_from(doc)
    assert compact.sha256 != pretty.sha256
    assert compact.dataset_name is None
    assert keys(compact.report.warnings) == {
        ("missing_field", "dataset_metadata.dataset_name"),
        ("derived_conversation_id", "dataset_metadata.dataset_name"),
    }


def test_derived_id_changes_with_content() -> None:
    doc = _without_dataset_name()
    changed = copy.deepcopy(doc)
    changed["training_pairs"][1]["target_response"] = "a different answer"
    assert analyzed(doc).conversation_id != analyzed(changed).conversation_id


def test_other_dataset_names_derive_the_id() -> None:
    doc = document()
    doc["dataset_metadata"]["dataset_name"] = "my dataset"
    analysis = analyzed(doc)
    assert analysis.report.ok
    assert analysis.conversation_id == derive_conversation_id(doc)
    assert analysis.dataset_name is None
    assert keys(analysis.report.warnings) == {
        ("bad_dataset_name", "dataset_metadata.dataset_name"),
        ("derived_conversation_id", "dataset_metadata.dataset_name"),
    }


@pytest.mark.parametrize(
    "name", ["fp_conversation_../../x", "fp_conversation_", "fp_conversation_3d4a31a7"]
)
def test_bad_dataset_name_blocks(name: str) -> None:
    doc = document()
    doc["dataset_metadata"]["dataset_name"] = name
    path = "dataset_metadata.dataset_name"
    analysis = blocked(json.dumps(doc).encode(), "bad_dataset_name", path)
    assert json.dumps(name) in analysis.report.blockers[0].message
    assert "not a uuid" in analysis.report.blockers[0].message
    assert analysis.conversation_id is None
    assert analysis.dataset_name is None
    with pytest.raises(ValueError):
        conversation_id_from(doc)


def test_upper_case_uuid_is_canonicalised() -> None:
    doc = document()
    doc["dataset_metadata"]["dataset_name"] = f"fp_conversation_{CONVERSATION_ID.upper()}"
    analysis = analyzed(doc)
    assert analysis.report.ok
    assert analysis.conversation_id == UUID(CONVERSATION_ID)
    assert analysis.dataset_name == f"fp_conversation_{CONVERSATION_ID}"
    assert keys(analysis.report.warnings) == {
        ("non_canonical_dataset_name", "dataset_metadata.dataset_name")
    }
