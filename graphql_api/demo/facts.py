"""The numbers of one demo conversation (amounts, rates, durations), drawn from its generator
and formatted for the sentence templates ("{monthly}", "{card_rate}"...)."""

from __future__ import annotations

import random

from .banks import CLIENT

__all__ = ["draw_facts", "money"]


def money(value: float) -> str:
    return f"${round(value):,}"


def draw_facts(rng: random.Random) -> dict[str, str]:
    """Per-conversation numbers, already formatted for the sentence templates."""
    monthly = rng.randrange(300, 1300, 50)
    mortgage = rng.randrange(180_000, 520_000, 5_000)
    old_rate = rng.choice((6.5, 6.75, 7.0, 7.25, 7.5))
    new_rate = old_rate - rng.choice((0.75, 1.0, 1.25, 1.5))
    closing = rng.randrange(3_500, 9_000, 250)
    monthly_savings = max(90, int(mortgage * (old_rate - new_rate) / 100 / 12 * 0.8))
    card_debt = rng.randrange(4_000, 26_000, 100)
    card_rate = rng.choice((21.9, 23.4, 24.9, 26.7, 27.9))
    take_home = rng.randrange(5_200, 14_000, 100)
    essentials = int(take_home * rng.uniform(0.45, 0.6))
    starter = rng.choice((1_000, 1_500, 2_000, 2_500))
    small_monthly = rng.randrange(40, 160, 10)
    care_month = rng.randrange(5_500, 11_000, 250)
    deductible = rng.choice((3_200, 4_000, 5_000, 6_000))
    payoff_months = max(3, round(card_debt / monthly * 1.12))
    return {
        "monthly": money(monthly),
        "half": money(monthly / 2),
        "five_year": money(monthly * 60),
        "parent_age": f"in their {rng.choice(('late 60s', 'early 70s', 'mid 70s'))}",
        "parent": rng.choice(CLIENT.parents),
        "care_hour": money(rng.randrange(28, 42)),
        "care_month": money(care_month),
        "parent_savings": money(rng.randrange(40_000, 220_000, 5_000)),
        "retirement_pct": f"{rng.randrange(8, 16)}%",
        "take_home": money(take_home),
        "one_income": money(take_home * rng.uniform(0.5, 0.62)),
        "childcare": money(rng.randrange(1_800, 3_600, 100)),
        "trial_savings": money(take_home * 0.42 * 3),
        "six_months": money(essentials * 6),
        "essentials": money(essentials),
        "emergency": money(rng.randrange(6_000, 38_000, 500)),
        "mortgage_balance": money(mortgage),
        "old_rate": f"{old_rate:.2f}%",
        "new_rate": f"{new_rate:.2f}%",
        "closing_costs": money(closing),
        "monthly_savings": money(monthly_savings),
        "breakeven": str(max(1, round(closing / monthly_savings))),
        "years_in_home": str(rng.randrange(2, 9)),
        "years_left": str(rng.randrange(18, 28)),
        "years_cut": str(rng.randrange(4, 10)),
        "card_debt": money(card_debt),
        "card_rate": f"{card_rate}%",
        "low_card_rate": f"{card_rate - rng.choice((4, 6, 8)):.1f}%",
        "interest_month": money(card_debt * card_rate / 100 / 12),
        "min_payment": money(max(35, card_debt * 0.025)),
        "payoff_months": str(payoff_months),
        "retirement_balance": money(rng.randrange(60_000, 640_000, 5_000)),
        "attorney_fee": money(rng.randrange(1_200, 3_200, 100)),
        "insurance": money(rng.randrange(140_000, 360_000, 10_000)),
        "deadline_days": str(rng.randrange(3, 12)),
        "medical_spend": money(rng.randrange(900, 5_200, 50)),
        "employer_hsa": money(rng.choice((500, 750, 1_000, 1_500))),
        "deductible": money(deductible),
        "premium_diff": money(rng.randrange(60, 220, 5)),
        "fsa_lost": money(rng.randrange(120, 600, 10)),
        "drop_pct": f"{rng.randrange(9, 24)}%",
        "years_to_retire": str(rng.randrange(12, 30)),
        "down_payment": money(rng.randrange(8_000, 45_000, 500)),
        "debt_share": money(monthly * 0.65),
        "house_share": money(monthly * 0.35),
        "small_savings": money(rng.randrange(150, 900, 10)),
        "car_repair": money(rng.randrange(900, 2_600, 50)),
        "starter": money(starter),
        "small_monthly": money(small_monthly),
        "refund": money(rng.randrange(900, 3_400, 50)),
        "rsu_value": money(rng.randrange(40_000, 180_000, 1_000)),
        "tax_bill": money(rng.randrange(3_000, 14_000, 100)),
        "tax_reserve": money(rng.randrange(3_000, 12_000, 250)),
        "concentration": f"{rng.randrange(25, 60)}%",
        "small_balance": money(rng.randrange(300, 1_400, 10)),
    }
