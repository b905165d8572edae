"""graphql_api.conversations.turns: turn numbers and counts across pairs."""

from __future__ import annotations

from .conversation_documents import analyzed, blocked_doc, document, keys, only_issue


def test_duplicate_turn_numbers_block() -> None:
    doc = document()
    doc["training_pairs"][2]["turn_number"] = 1
    message = blocked_doc(doc, "duplicate_turn_number", "training_pairs[2].turn_number").message
    assert "already used by training_pairs[0]" in message


def test_turn_gaps_warn() -> None:
    doc = document()
    doc["training_pairs"][2]["turn_number"] = 5
    doc["training_pairs"][2]["training_metadata"]["conversation_turn"] = 5
    warning = only_issue(analyzed(doc).report.warnings, "turn_sequence", "training_pairs")
    assert "[1, 2, 5]" in warning.message


def test_inconsistent_counts_warn() -> None:
    doc = document()
    doc["training_pairs"][1]["training_metadata"]["conversation_turn"] = 7
    doc["dataset_metadata"]["total_turns"] = 9
    analysis = analyzed(doc)
    assert analysis.report.ok
    assert keys(analysis.report.warnings) == {
        ("inconsistent_value", "training_pairs[1].training_metadata.conversation_turn"),
        ("inconsistent_value", "dataset_metadata.total_turns"),
    }
    assert analysis.total_turns == 3
