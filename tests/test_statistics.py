"""graphql_api.conversations.statistics: a conversation's scores and the sums a training
file adds up, with unscored pairs counted at the conversation's score (PRODUCT.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from graphql_api.conversations.statistics import mean_score

from .conversation_documents import analyzed, document, with_scores


def test_quality_is_exact_and_rounded_half_up() -> None:
    assert analyzed(with_scores(4.1, 4.2, 4.2)).quality_score == Decimal("4.17")
    assert analyzed(with_scores(2.345)).quality_score == Decimal("2.35")
    assert analyzed(with_scores(1.005)).quality_score == Decimal("1.01")
    assert mean_score([Decimal("0.125")] * 3) == Decimal("0.13")
    assert mean_score([]) is None


def test_an_unscored_pair_counts_at_the_conversation_score() -> None:
    analysis = analyzed(with_scores(4.1, 4.2, 4.2, None))
    stats = analysis.stats
    # The conversation's score is the mean of its scored pairs, 12.5 / 3 = 4.1666… → 4.17,
    # and the unscored pair counts as 4.17.
    assert analysis.quality_score == Decimal("4.17")
    assert (stats.quality_sum, stats.quality_count) == (Decimal("16.67"), 4)
    assert (stats.quality_min, stats.quality_max) == (Decimal("4.1"), Decimal("4.2"))


def test_the_fallback_is_the_rounded_score_the_conversation_shows() -> None:
    stats = analyzed(with_scores(1, 2, 2, None)).stats
    assert stats.quality_sum == Decimal("6.67")  # 5 + 1.67, not 5 + 1.666…
    assert (stats.quality_min, stats.quality_max) == (Decimal(1), Decimal(2))


def test_the_fallback_can_be_the_minimum_or_maximum() -> None:
    stats = analyzed(with_scores(2, 3, None)).stats
    assert (stats.quality_min, stats.quality_max) == (Decimal(2), Decimal(3))
    stats = analyzed(with_scores(2, None, None, None)).stats
    assert (stats.quality_sum, stats.quality_count) == (Decimal(8), 4)
    assert (stats.quality_min, stats.quality_max) == (Decimal(2), Decimal(2))


def test_a_file_of_two_conversations_gets_the_numbers_of_the_rule() -> None:
    # One conversation with a single scored pair (2) and three unscored ones, one with two 5s.
    # The rule: six pairs 2, 2, 2, 2, 5, 5 → average 3.00 (dropping unscored pairs gave 4.00).
    first = analyzed(with_scores(2, None, None, None)).stats
    second = analyzed(with_scores(5, 5)).stats
    total = first.quality_sum + second.quality_sum
    count = first.quality_count + second.quality_count
    assert (total, count) == (Decimal(18), 6)
    assert total / count == Decimal(3)


def test_a_pair_without_training_metadata_falls_back_too() -> None:
    doc = document()
    del doc["training_pairs"][0]["training_metadata"]
    analysis = analyzed(doc)
    assert analysis.report.ok
    assert analysis.stats.quality_count == 3
    assert analysis.stats.quality_sum == Decimal(12)
    assert analysis.stats.human_reviewed_count == 1


def test_no_quality_values_at_all() -> None:
    analysis = analyzed(with_scores(None, None))
    assert analysis.stats.quality_count == 0
    assert analysis.stats.quality_sum == Decimal(0)
    assert (analysis.stats.quality_min, analysis.stats.quality_max) == (None, None)
    assert (analysis.quality_score, analysis.tier) == (None, "experimental")


def test_criteria_are_averaged_over_the_pairs_that_have_them() -> None:
    doc = document()
    doc["training_pairs"][0]["training_metadata"]["quality_criteria"]["empathy_score"] = 1
    del doc["training_pairs"][1]["training_metadata"]["quality_criteria"]["empathy_score"]
    del doc["training_pairs"][2]["training_metadata"]["quality_criteria"]
    analysis = analyzed(doc)
    assert analysis.empathy_score == Decimal("1.00")
    assert analysis.clarity_score == Decimal("4.50")


def test_trainable_and_reviewed_pairs() -> None:
    doc = document(4)
    doc["training_pairs"][3]["target_response"] = None
    for pair in doc["training_pairs"][2:]:
        pair["training_metadata"]["human_reviewed"] = True
    stats = analyzed(doc).stats
    assert (stats.pair_count, stats.trainable_pair_count, stats.human_reviewed_count) == (4, 2, 3)


@pytest.mark.parametrize(
    ("scores", "tier"),
    [
        ((4.5, 4.5), "seed_dataset"),
        ((4.4, 4.6), "seed_dataset"),
        ((4.4, 4.5), "production"),  # 4.45
        ((2, 3), "experimental"),
        ((2, 2.9), "rejected"),  # 2.45
    ],
)
def test_the_tier_follows_the_conversation_score(scores: tuple[float, ...], tier: str) -> None:
    assert analyzed(with_scores(*scores)).tier == tier
