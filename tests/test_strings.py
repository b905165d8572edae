"""graphql_api.conversations.strings: unstorable text blocks, upstream artifacts warn."""

from __future__ import annotations

import json

import pytest

from .conversation_documents import PAIRS_CM, analyzed, blocked, document, only_issue


@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800"])
def test_unstorable_strings_block(escape: str) -> None:
    raw = json.dumps(document()).replace("question 2", f"question{escape}").encode()
    blocked(raw, "invalid_unicode", "training_pairs[1].current_user_input")


def test_unstorable_keys_block() -> None:
    raw = json.dumps(document()).replace('"notes"', '"no\\u0000tes"').encode()
    analysis = blocked(raw, "invalid_unicode", 'dataset_metadata["no\\u0000tes"]')
    assert "has a key containing U+0000" in analysis.report.blockers[0].message


def test_object_object_text_warns_once_per_path() -> None:
    doc = document()
    for pair in doc["training_pairs"]:
        background = pair["conversation_metadata"]["client_background"]
        pair["conversation_metadata"]["client_background"] = f"[object Object]; {background}"
    doc["training_pairs"][0]["current_user_input"] = "I pasted [object Object] by mistake"
    analysis = analyzed(doc)
    assert analysis.report.ok
    background = only_issue(
        analysis.report.warnings, "serialization_artifact", f"{PAIRS_CM}.client_background"
    )
    assert background.message == (
        f'{PAIRS_CM}.client_background contains "[object Object]", an object the upstream '
        "pipeline wrote as text (kept as is) (in 3 of 3 training pairs)."
    )
    only_issue(
        analysis.report.warnings, "serialization_artifact", "training_pairs[0].current_user_input"
    )


def test_clean_text_has_no_artifact_warning() -> None:
    assert analyzed(document()).report.warnings == ()
