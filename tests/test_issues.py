"""graphql_api.conversations.issues: paths, folding of repeated warnings, caps."""

from __future__ import annotations

from graphql_api.conversations.issues import MAX_ISSUES, Issue, Issues, render, show

from .conversation_documents import analyzed, document


def test_paths_render_like_jsonpath() -> None:
    assert render(()) == "$"
    assert render(("training_pairs", 2, "turn_number")) == "training_pairs[2].turn_number"
    assert render(("training_pairs", 2, "x"), wildcard=True) == "training_pairs[*].x"
    assert render(("input_parameters", "odd key")) == 'input_parameters["odd key"]'


def test_shown_values_are_short_and_storable() -> None:
    assert show("a" * 100) == '"' + "a" * 78 + "…"
    assert show("\ud800") == '"\\ud800"'
    assert show({"k": 1}) == '{"k": 1}'


def test_a_warning_in_every_pair_is_one_warning() -> None:
    issues = Issues()
    issues.pair_total = 3
    for index in range(3):
        issues.warn("enum_drift", ("training_pairs", index, "phase"), 'is "x"')
    assert issues.report().warnings == (
        Issue(
            "enum_drift",
            "training_pairs[*].phase",
            'training_pairs[*].phase is "x" (in 3 of 3 training pairs).',
        ),
    )


def test_a_single_warning_keeps_its_index_and_the_document_is_named() -> None:
    issues = Issues()
    issues.pair_total = 3
    issues.warn("enum_drift", ("training_pairs", 1, "phase"), 'is "x"')
    issues.warn("byte_order_mark", (), "starts with a BOM")
    issues.warn("byte_order_mark", (), "starts with a BOM")
    assert [w.message for w in issues.report().warnings] == [
        'training_pairs[1].phase is "x".',
        "The document starts with a BOM (2 times).",
    ]


def test_history_repeats_are_counted_per_occurrence_and_pair() -> None:
    doc = document()
    for pair in doc["training_pairs"]:
        for turn in pair["conversation_history"]:
            turn["role"] = "client"
    [warning] = analyzed(doc).report.warnings
    assert warning.path == "training_pairs[*].conversation_history[*].role"
    assert "3 times in 2 of 3 training pairs" in warning.message


def test_blockers_are_capped() -> None:
    doc = document(1)
    doc["training_pairs"] = [{"turn_number": i, "current_user_input": "hi"} for i in range(1, 151)]
    blockers = analyzed(doc).report.blockers
    assert len(blockers) == MAX_ISSUES + 1
    assert blockers[-1].code == "too_many_issues"
    assert "50 more blockers" in blockers[-1].message


def test_warnings_are_capped() -> None:
    issues = Issues()
    for index in range(MAX_ISSUES + 7):
        issues.warn("unknown_key", (f"key_{index}",), "is unknown")
    warnings = issues.report().warnings
    assert len(warnings) == MAX_ISSUES + 1
    assert warnings[-1] == Issue(
        "too_many_issues", "$", "7 more warnings were found and not listed."
    )
