"""graphql_api.aggregation.requests: the checks of a training-file request, each problem kept."""

from __future__ import annotations

from uuid import UUID

import pytest

from graphql_api.aggregation.requests import check_description, check_ids, check_name
from graphql_api.errors import Problem, ProblemList

A = UUID("00000000-0000-4000-8000-000000000001")
B = UUID("00000000-0000-4000-8000-000000000002")
C = UUID("00000000-0000-4000-8000-000000000003")


def test_ids_keep_request_order_and_report_each_duplicate_once() -> None:
    problems = ProblemList()
    ids = check_ids([str(B), str(A), str(B), str(C), str(B), str(A), "nope"], problems)
    assert ids == [B, A, C]
    assert problems.problems == [
        Problem("INVALID_ID", "'nope' is not a UUID", "conversation_ids"),
        Problem(
            "DUPLICATE_IN_REQUEST",
            f"conversation ids given more than once: {B}, {A}",
            "conversation_ids",
            (B, A),
        ),
    ]


def test_eighty_distinct_ids_pass() -> None:
    raw = [str(UUID(int=i, version=4)) for i in range(80)]
    problems = ProblemList()
    assert check_ids(raw, problems) == [UUID(r) for r in raw]
    assert problems.problems == []


@pytest.mark.parametrize(
    "raw",
    [
        [str(UUID(int=i, version=4)) for i in range(25_000)],
        ["not a uuid"] * 25_000,
        [str(A)] * 25_000,
    ],
    ids=["distinct", "invalid", "one-repeated"],
)
def test_past_the_cap_only_the_count_is_reported(raw: list[str]) -> None:
    # Nothing past the cap is looked at one by one: no per-id problems, no ids to look up.
    problems = ProblemList()
    assert check_ids(raw, problems) == []
    assert problems.problems == [
        Problem(
            "TOO_MANY_CONVERSATIONS",
            "at most 80 conversations per request, got 25000",
            "conversation_ids",
        )
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a\x00b", "name must not contain control characters"),
        ("a\ud800b", "name must not contain unpaired surrogates (U+D800 to U+DFFF)"),
        ("\udfff", "name must not contain unpaired surrogates (U+D800 to U+DFFF)"),
    ],
)
def test_names_postgresql_cannot_store_are_refused(name: str, message: str) -> None:
    problems = ProblemList()
    assert check_name(name, problems) is None
    assert problems.problems == [Problem("INVALID_NAME", message, "name")]


@pytest.mark.parametrize(
    ("description", "message"),
    [
        ("first\x00batch", "description must not contain NUL characters (U+0000)"),
        (
            "first \ud83d batch",
            "description must not contain unpaired surrogates (U+D800 to U+DFFF)",
        ),
    ],
)
def test_descriptions_postgresql_cannot_store_are_refused(description: str, message: str) -> None:
    problems = ProblemList()
    assert check_description(description, problems) is None
    assert problems.problems == [Problem("INVALID_DESCRIPTION", message, "description")]


def test_storable_text_passes_unchanged() -> None:
    problems = ProblemList()
    text = "Résumé 😀 — line\nbreak\ttab"
    assert check_description(text, problems) == text
    assert check_name("Résumé 😀", problems) == "Résumé 😀"
    assert problems.problems == []
