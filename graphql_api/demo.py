"""Deterministic generator of synthetic *enriched conversation* files.

The files are shaped like the output of the upstream enrichment pipeline (one coaching
conversation per file, ``fp_conversation_<uuid>.json``): ``dataset_metadata``,
``consultant_profile``, ``training_pairs`` and, for most files, ``input_parameters``. All text
is composed here from small sentence banks; nothing is copied from real data.

Like the real files, a conversation alternates user turns (odd ``turn_number``, ``target_response``
null) and consultant turns (even, same ``current_user_input`` as the preceding user turn, with a
``target_response``). ``conversation_history`` of turn *n* holds turns 1..n-1 with their content
and emotional state, the system prompt is repeated in every pair.

Real data drift is reproduced in fixed proportions that depend only on the file's index (so
any 100 consecutive indices contain exactly):

* 60 files with a top-level ``input_parameters`` object and the v4 scaffolding keys per pair;
* 15 files with the v4 keys but without ``input_parameters``;
* 25 "older" files without ``input_parameters`` whose pairs lack ``persona_archetype``,
  ``emotional_arc``, ``emotional_arc_key``, ``training_topic`` and ``training_topic_key``
  (about half of them carry the ``[object Object]`` background prefix of the old pipeline);
* 5 files with one extra, unknown key in ``dataset_metadata``, ``conversation_metadata`` or
  ``training_metadata``;
* out-of-enum values: the ``couple_conflict_to_alignment`` arc (about 15% of files, chosen by
  the random generator), whose phase is the arc key or ``couple_conflict_resolution``; some
  files keep one phase for every pair, and some overwhelm files open with
  ``initial_overwhelm_breakdown``.

Quality: per 100 files, 8 low (1.0-2.4), 10 borderline (2.5-2.9), 60 typical (3.0-4.4),
16 high (4.5-4.9) and 6 perfect (5); 20 files have most of their pairs human-reviewed.

Everything derives from the ``random.Random`` passed in (or from fixed keys), never from the
clock, ``uuid4`` or set ordering, so a seed always gives byte-identical files.
"""

from __future__ import annotations

import datetime as _dt
import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["generate_conversation", "write_demo_set"]

# ---------------------------------------------------------------------------------------------
# Fixed identity of the consultant
# ---------------------------------------------------------------------------------------------

CONSULTANT_NAME = "Elena Morales, CFP"
CONSULTANT_BUSINESS = "Pathways Financial Planning"
CONSULTANT_PERSONA = f"{CONSULTANT_NAME} - {CONSULTANT_BUSINESS}"
VERTICAL = "financial_planning_consultant"
TARGET_USE = "LoRA fine-tuning for emotionally intelligent chatbot"

CONSULTANT_PROFILE: dict[str, Any] = {
    "name": CONSULTANT_NAME,
    "business": CONSULTANT_BUSINESS,
    "expertise": "fee-only planning for households in the middle of their careers",
    "years_experience": 15,
    "core_philosophy": {
        "principle_1": "Feelings come first - name the emotion before touching the numbers",
        "principle_2": "No judgment, ever - say out loud that the struggle is normal",
        "principle_3": "Teach the reasoning so the client can make the next decision alone",
        "principle_4": "Small steps count - notice and celebrate every one of them",
        "principle_5": "The client's values decide, not rules of thumb",
    },
    "communication_style": {
        "tone": "warm, steady and professional, never talking down",
        "techniques": [
            "name emotions out loud before giving information",
            "explain hard ideas with everyday comparisons",
            "use the client's own numbers instead of generalities",
            "ask before switching into teaching mode",
            "point out progress the client has already made",
        ],
        "avoid": [
            "unexplained industry jargon",
            "guessing what the client already knows",
            "criticising choices the client made in the past",
            "listing more options than the client can weigh",
            "comforting phrases with nothing concrete behind them",
        ],
    },
}

_SYSTEM_PROMPTS = (
    "You are an emotionally intelligent financial planning assistant speaking for "
    f"{CONSULTANT_NAME} of {CONSULTANT_BUSINESS}. Follow these principles: (1) Money carries "
    "emotion - name what the client feels before you discuss figures, (2) Keep the space free of "
    "judgment - tell clients plainly that their struggle is common, (3) Teach the reasoning "
    "behind every recommendation, (4) Value progress over perfection and celebrate small steps, "
    "(5) Let the client's own values drive the plan. When you notice shame, fear or overwhelm, "
    "acknowledge it explicitly before offering guidance. Break complicated ideas into one step at "
    "a time, prefer the client's real numbers to abstractions, and ask before you start teaching. "
    "Stay warm and professional and never sound condescending.",
    f"You represent {CONSULTANT_NAME}, a fee-only planner at {CONSULTANT_BUSINESS}, in a chat "
    "with a client. Your core principles: (1) Money is emotional, so acknowledge feelings before "
    "facts, (2) Create a judgment-free space and normalize the struggle out loud, (3) Educate "
    "first - explain why before what, (4) Celebrate progress rather than demanding perfection, "
    "(5) Anchor every decision in what the client values. If the client sounds ashamed, anxious "
    "or overwhelmed, validate that feeling before giving advice. Use concrete numbers, explain "
    "any term you introduce, offer at most two or three options at once, and ask permission "
    "before going into detail. Your tone is warm, calm and respectful.",
    "Act as the client-facing assistant of "
    f"{CONSULTANT_BUSINESS}, speaking in the voice of {CONSULTANT_NAME}. Principles: (1) "
    "Emotions before numbers, (2) No judgment of past decisions, (3) Explain the why so the "
    "client learns, (4) Progress over perfection, (5) Personal values over generic rules. "
    "Validate shame and anxiety explicitly when you detect them, then move to one small, "
    "specific next step. Replace jargon with plain words, replace abstractions with the "
    "client's actual figures, and check in before teaching. Be warm, professional and never "
    "condescending; end most replies with a question that keeps the client engaged.",
)

# ---------------------------------------------------------------------------------------------
# Scaffolding: personas, emotional arcs, training topics
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Persona:
    key: str
    name: str
    label: str
    ages: tuple[int, int]
    gender: str
    settings: tuple[str, ...]
    households: tuple[str, ...]
    profile: str
    openers: tuple[str, ...]
    traits: tuple[str, ...]
    residual: tuple[str, ...]
    insight: tuple[str, ...]

    @property
    def first(self) -> str:
        return self.name.split()[0]


PERSONAS: tuple[Persona, ...] = (
    Persona(
        key="pragmatic_optimist",
        name="David Chen",
        label="The Pragmatic Optimist",
        ages=(33, 38),
        gender="male",
        settings=("Urban", "Urban/Suburban", "Inner suburb"),
        households=("married or partnership", "married, one toddler", "partnered, no kids yet"),
        profile=(
            "Steady, middle-of-the-road salary with little slack in the budget. Decides from "
            "values more than spreadsheets. Hopeful about the long run and realistic about this "
            "year. Comfortable trading one goal for another once the trade is clear. Would "
            "rather follow a good plan than admire a perfect one."
        ),
        openers=(
            "Okay, so I'll be upfront: I think we're doing alright overall, but there's one "
            "thing I keep going back and forth on.",
            "I'm usually the 'it'll work out' guy, and mostly it does, but this one has me stuck.",
            "I've been trying to be practical about this and I think I've gotten about as far "
            "as I can on my own.",
            "Quick background before my question, because I think the context matters here.",
        ),
        traits=(
            "I don't need the mathematically perfect answer, I just need something we can "
            "actually stick to.",
            "I'm fine giving something up if I understand what we're getting for it.",
            "I keep telling myself it'll sort itself out, but I know that's not a plan.",
            "Honestly I'd rather make a decent decision this month than a perfect one next year.",
        ),
        residual=(
            "I still want to sanity-check the numbers once more before we commit.",
            "Part of me wonders if I'm being too optimistic about how disciplined we'll be.",
            "I guess my only hesitation is what happens if our income dips for a few months.",
        ),
        insight=(
            "you're clearly someone who wants a plan you'll follow, not a perfect one you'll "
            "abandon",
            "your instinct to look for the trade-off rather than the magic answer is a real "
            "strength",
            "you're already thinking in terms of what matters most, which is exactly where good "
            "decisions start",
        ),
    ),
    Persona(
        key="anxious_planner",
        name="Jennifer Martinez",
        label="The Anxious Planner",
        ages=(39, 45),
        gender="female",
        settings=("Suburban", "Suburban, near a mid-sized city", "Small town"),
        households=(
            "married with children",
            "married, two school-age kids",
            "partnered, one teenager",
        ),
        profile=(
            "Organized with money but driven by worry. Logs every purchase. Runs worst-case "
            "scenarios in her head at night. Researches every decision far past the point of "
            "usefulness. Makes plans, then doubts them. Looks for reassurance before acting."
        ),
        openers=(
            "I've been lying awake thinking about this, so I'm just going to lay it all out.",
            "I'm sorry in advance if this is long, I've been researching this for weeks and I "
            "think I've made myself more anxious, not less.",
            "I have a spreadsheet for this, actually three of them, and I still can't tell if "
            "we're okay.",
            "I know I tend to overthink things, but I really need someone to tell me whether I'm "
            "worrying about the right thing.",
        ),
        traits=(
            "Every article I read gives me a different number and each one makes me feel worse.",
            "I keep building worst-case scenarios and then I can't stop thinking about them.",
            "I've checked our accounts probably four times this week.",
            "I want a plan, but I also want to know the plan won't fall apart the moment "
            "something unexpected happens.",
        ),
        residual=(
            "I know I'll probably still second-guess this at two in the morning.",
            "What if we set this up and then something happens in the first year?",
            "I'm trying to trust the plan, but the worried part of me hasn't fully caught up.",
        ),
        insight=(
            "the amount of research you've done shows how much you care, even if it has started "
            "to work against you",
            "your carefulness is a real asset; it just needs a clear finish line so it stops "
            "feeding the worry",
            "you're far more prepared than your anxiety is letting you feel",
        ),
    ),
    Persona(
        key="overwhelmed_avoider",
        name="Marcus Chen",
        label="The Overwhelmed Avoider",
        ages=(35, 40),
        gender="male",
        settings=("Urban", "Urban/Suburban", "Downtown apartment"),
        households=(
            "single or married without kids",
            "single, shares a condo",
            "recently married, no kids",
        ),
        profile=(
            "Well paid, with compensation that has moving parts (bonus, equity grants). Freezes "
            "when decisions pile up and tends to postpone them. Has the means but not the "
            "confidence. Feels behind and embarrassed about it."
        ),
        openers=(
            "I honestly don't even know where to start, which is kind of the problem.",
            "I've been putting this off for a long time and I'm a little embarrassed to be "
            "asking now.",
            "Every time I try to deal with this I open ten browser tabs and then close all of "
            "them.",
            "I make decent money, so I feel like I should have this figured out by now, but I "
            "really don't.",
        ),
        traits=(
            "There are so many moving pieces that I just end up doing nothing.",
            "I have a folder of paperwork about this that I haven't opened in months.",
            "Whenever I think about it I feel like I'm already too far behind to fix it.",
            "I know avoiding it is probably the most expensive option, and I still avoid it.",
        ),
        residual=(
            "My fear is that I'll start strong and then let it slide again.",
            "I'm a little worried I'll get stuck on the second step the way I always do.",
            "It still feels like a lot, but less like a wall and more like a list.",
        ),
        insight=(
            "reaching out after avoiding this for a while takes more courage than people give "
            "themselves credit for",
            "the overwhelm you feel comes from looking at every piece at once, not from any lack "
            "of ability",
            "you have more resources to work with than you realize; what's been missing is an "
            "order of operations",
        ),
    ),
)


@dataclass(frozen=True)
class Arc:
    key: str
    name: str
    prefix: str
    difficulty: str
    start: str
    end: str
    first_phase: str
    user_emotions: tuple[tuple[str, str], ...]
    coach_emotions: tuple[tuple[str, str], ...]
    validation: tuple[str, ...]
    feelings_start: tuple[str, ...]
    feelings_mid: tuple[str, ...]
    feelings_end: tuple[str, ...]
    session: tuple[str, ...]
    outcome: tuple[str, ...]


_COACH_EMOTIONS = (
    ("empathy", "validation"),
    ("validation", "reassurance"),
    ("educational_support", "encouragement"),
    ("encouragement", "partnership"),
    ("supportive_celebration", "confidence_building"),
)

ARCS: tuple[Arc, ...] = (
    Arc(
        key="confusion_to_clarity",
        name="Confusion → Clarity",
        prefix="educational",
        difficulty="beginner",
        start="confusion",
        end="clarity",
        first_phase="initial_opportunity_exploration",
        user_emotions=(
            ("confusion", "embarrassment"),
            ("curiosity", "confusion"),
            ("cautious_hope", "understanding"),
            ("clarity", "gratitude"),
        ),
        coach_emotions=_COACH_EMOTIONS,
        validation=(
            "this genuinely is confusing, and the fact that it doesn't click right away says "
            "more about how it's usually explained than about you.",
            "asking this question is exactly the right move. Most people just pick something "
            "and hope, and you're choosing to understand it first.",
            "I want to start by saying there's nothing basic or silly about this question. I "
            "hear versions of it every single week.",
        ),
        feelings_start=(
            "Every explanation I find uses words I have to look up, and then those words use "
            "more words I have to look up.",
            "I feel kind of dumb asking, because it seems like everyone else just knows this.",
            "I've read enough to be confused but not enough to actually decide anything.",
        ),
        feelings_mid=(
            "Okay, that is starting to make sense, the way you put it is much clearer than "
            "anything I read.",
            "I think I get the basic idea now, I just want to make sure I'm applying it right.",
            "That comparison actually helped, I hadn't thought about it that way.",
        ),
        feelings_end=(
            "For the first time I feel like I actually understand what I'm deciding.",
            "This is so much clearer. I could probably explain it to someone else now.",
            "I feel a lot less lost than when we started.",
        ),
        session=(
            "{first} is reaching out after trying to research {phrase} alone and ending up more "
            "confused than before",
            "{first} booked a session because conflicting advice about {phrase} has left them "
            "unsure what to do first",
            "Weekend check-in: {first} wants a plain-language explanation of {phrase} before "
            "making any decision",
        ),
        outcome=(
            "Turn confusion about {phrase} into a clear understanding of the options and one "
            "concrete next step",
            "Replace conflicting information with a simple framework for {phrase} that the client "
            "can apply on their own",
        ),
    ),
    Arc(
        key="shame_to_acceptance",
        name="Shame → Acceptance",
        prefix="therapeutic",
        difficulty="intermediate",
        start="shame",
        end="acceptance",
        first_phase="initial_shame_revelation",
        user_emotions=(
            ("shame", "fear"),
            ("vulnerability", "relief"),
            ("tentative_acceptance", "hope"),
            ("acceptance", "determination"),
        ),
        coach_emotions=_COACH_EMOTIONS,
        validation=(
            "thank you for trusting me with this. I know it wasn't easy to write, and I want "
            "you to hear clearly that there is no judgment here.",
            "the courage it took to say this out loud matters more than the situation itself. "
            "Situations can be fixed; the hard part is the first honest conversation, and you "
            "just had it.",
            "I want to pause on what you just shared, because shame has a way of making money "
            "problems feel like character problems, and they are not.",
        ),
        feelings_start=(
            "I haven't told anyone this, not even my closest friends.",
            "I feel so embarrassed, like I should have known better by now.",
            "Every time I think about how it got this bad I feel sick.",
        ),
        feelings_mid=(
            "It actually helps to hear that I'm not the only one this has happened to.",
            "I didn't expect to feel lighter just from saying it, but I do a little.",
            "I think I've been so focused on beating myself up that I never looked at the "
            "actual numbers.",
        ),
        feelings_end=(
            "I think I can finally stop treating this like a secret and start treating it like "
            "a project.",
            "It's strange, but I feel more accepting of where I am, and more motivated, at the "
            "same time.",
            "I'm not proud of how I got here, but I'm okay with where I'm starting from.",
        ),
        session=(
            "{first} is reaching out after keeping a problem with {phrase} hidden for months and "
            "finally feeling ready to talk about it",
            "Late-evening message: {first} admits feeling ashamed about {phrase} and asks for "
            "help without judgment",
            "{first} is opening up for the first time about {phrase} after a stressful week",
        ),
        outcome=(
            "Help the client separate self-worth from the situation around {phrase}, accept the "
            "starting point and commit to a first step",
            "Move from secrecy and shame to acceptance, with a realistic plan for {phrase}",
        ),
    ),
    Arc(
        key="fear_to_confidence",
        name="Fear → Confidence",
        prefix="anxiety_management",
        difficulty="advanced",
        start="fear",
        end="confidence",
        first_phase="initial_crisis_disclosure",
        user_emotions=(
            ("anxiety", "fear"),
            ("anxiety", "hope"),
            ("cautious_optimism", "relief"),
            ("confidence", "relief"),
        ),
        coach_emotions=_COACH_EMOTIONS,
        validation=(
            "the worry you're describing makes complete sense. You care about getting this "
            "right, and fear is often what caring feels like when the future is uncertain.",
            "I can hear how heavy this has been, and I want to slow down for a moment before we "
            "look at a single number.",
            "what you're feeling is a very normal response to an uncertain situation, and we "
            "can work with it rather than against it.",
        ),
        feelings_start=(
            "I keep imagining the worst version of this and I can't shake it.",
            "My chest actually gets tight when I think about it, which I know sounds dramatic.",
            "I'm scared that if I get this wrong there's no undoing it.",
        ),
        feelings_mid=(
            "Hearing it broken down like that makes it feel less like a cliff.",
            "I'm still nervous, but it's more of a 'let's check' nervous than a panic.",
            "I think I was treating the worst case like it was the most likely case.",
        ),
        feelings_end=(
            "I actually feel confident about this, which I did not expect to say today.",
            "The fear isn't totally gone, but it's not driving anymore.",
            "I feel like we have a plan that can handle a bad year, and that's what I needed.",
        ),
        session=(
            "{first} is reaching out proactively about {phrase} after a stressful event made the "
            "risk feel very real",
            "{first} wants reassurance about {phrase} after spending nights running worst-case "
            "scenarios",
            "{first} asked for an urgent conversation about {phrase} following alarming news "
            "coverage",
        ),
        outcome=(
            "Separate objective readiness from anxiety about {phrase}, and build confidence "
            "through a concrete, stress-tested plan",
            "Reduce fear around {phrase} by quantifying the real risk and agreeing on protective "
            "next steps",
        ),
    ),
    Arc(
        key="overwhelm_to_empowerment",
        name="Overwhelm → Empowerment",
        prefix="empowerment_coaching",
        difficulty="intermediate",
        start="overwhelm",
        end="empowerment",
        first_phase="initial_opportunity_exploration",
        user_emotions=(
            ("overwhelm", "paralysis"),
            ("overwhelm", "relief"),
            ("motivated_concern", "cautious_optimism"),
            ("empowerment", "determination"),
        ),
        coach_emotions=_COACH_EMOTIONS,
        validation=(
            "it makes complete sense that you feel overwhelmed. You're looking at five decisions "
            "at once, and nobody can make five decisions at once.",
            "first, breathe. Nothing here has to be solved today, and we are going to take it one "
            "piece at a time.",
            "the feeling of being frozen is incredibly common when a decision has this many "
            "moving parts. It's not a sign that you can't handle it.",
        ),
        feelings_start=(
            "Every time I try to make a list, the list has sub-lists and I just close the laptop.",
            "I feel like I'm drowning in options and all of them seem important.",
            "I don't even know which question to ask first.",
        ),
        feelings_mid=(
            "Okay, when you put it as just one thing this week, it feels doable.",
            "I think I can handle that part. It's the rest of it that still feels big.",
            "Having an order to do things in already makes me breathe easier.",
        ),
        feelings_end=(
            "I feel like I'm actually in charge of this now instead of it being in charge of me.",
            "It's still a lot, but it's a list I can work through, not a wall.",
            "I'm kind of excited to get started, which is new.",
        ),
        session=(
            "{first} is reaching out after months of avoiding {phrase} and feeling paralyzed by "
            "the number of moving parts",
            "Evening session after {first} spent hours researching {phrase} and came away with "
            "more questions than answers",
            "{first} wants help turning a pile of decisions about {phrase} into a short, ordered "
            "list",
        ),
        outcome=(
            "Transform overwhelm about {phrase} into an ordered, manageable plan the client "
            "feels able to start",
            "Break {phrase} into small steps and leave the client feeling capable and in control",
        ),
    ),
    Arc(
        key="couple_conflict_to_alignment",
        name="Couple Conflict → Alignment",
        prefix="conflict_resolution",
        difficulty="intermediate",
        start="frustration",
        end="clarity",
        first_phase="couple_conflict_to_alignment",
        user_emotions=(
            ("frustration", "guilt"),
            ("frustration", "hope"),
            ("relief", "cautious_optimism"),
            ("clarity", "partnership"),
        ),
        coach_emotions=(
            ("validation", "hope"),
            ("validation", "empathy"),
            ("clarity", "determination"),
            ("encouragement", "partnership"),
            ("partnership", "gratitude"),
        ),
        validation=(
            "what you're describing is one of the most common sources of tension between "
            "partners, and the fact that you both care this much is a good sign, not a bad one.",
            "I want to name something first: neither of you sounds selfish to me. You sound like "
            "two people protecting different things you both value.",
            "disagreements like this are rarely about the money itself. They're about what the "
            "money represents to each of you, and that's something we can work with.",
        ),
        feelings_start=(
            "We had another argument about it last night and neither of us slept well.",
            "I hate that money is turning into the thing we fight about.",
            "I can see their point, I really can, but I also feel like mine is being dismissed.",
        ),
        feelings_mid=(
            "I showed {partner} what you wrote and we actually had a calm conversation about it.",
            "I think we've been arguing about the answer when we haven't even agreed on the "
            "question.",
            "It helps to see that it doesn't have to be all or nothing.",
        ),
        feelings_end=(
            "For the first time it feels like we're on the same team about this.",
            "{partner} and I both feel heard, which honestly is the bigger win.",
            "I think we finally have something we can both say yes to.",
        ),
        session=(
            "{first} is reaching out during a period of tension with {partner} about {phrase}",
            "Evening conversation after a tense discussion between {first} and {partner} about "
            "{phrase}",
            "{first} hopes to find a compromise with {partner} on {phrase} before it turns into a "
            "bigger rift",
        ),
        outcome=(
            "Turn either/or thinking about {phrase} into a both/and plan that honors both "
            "partners' concerns",
            "Validate both perspectives on {phrase} and reach a specific allocation both partners "
            "accept",
        ),
    ),
)


@dataclass(frozen=True)
class Topic:
    key: str
    name: str
    phrase: str
    situation: tuple[str, ...]
    worry: tuple[str, ...]
    concepts: tuple[str, ...]
    steps: tuple[tuple[str, str], ...]
    followups: tuple[str, ...]
    questions: tuple[str, ...]
    commitments: tuple[str, ...]


TOPICS: tuple[Topic, ...] = (
    Topic(
        key="eldercare_costs",
        name="Planning for Eldercare Expenses",
        phrase="preparing for a parent's future care costs",
        situation=(
            "My parents are {parent_age} and still fairly independent, but my {parent} had a "
            "health scare this spring.",
            "In-home help in our area runs about {care_hour} an hour, and a care facility nearby "
            "quoted {care_month} a month.",
            "They have some savings, maybe {parent_savings}, plus Social Security, but nowhere "
            "near enough for years of care.",
        ),
        worry=(
            "being caught unprepared if a parent suddenly needs full-time care",
            "draining your own retirement to cover a parent's care",
            "feeling like you're abandoning your parents if you don't plan ahead",
        ),
        concepts=(
            "Most eldercare spending doesn't arrive as one huge bill; it usually ramps up over "
            "years, from a few hours of help a week to more support later, which means the "
            "planning can ramp up too.",
            "It helps to separate three buckets: what your parents' own assets and income can "
            "cover, what programs like Medicare and, later, Medicaid will and won't pay for, and "
            "the gap, if any, that family might fill.",
            "A dedicated, separate savings account for family care keeps that money visible and "
            "protects your retirement accounts from being raided in a moment of crisis.",
            "Long-term care insurance and hybrid life policies are worth pricing now, while your "
            "parents are healthy, because both get much more expensive or unavailable after a "
            "diagnosis.",
        ),
        steps=(
            (
                "Map their resources",
                "Sit down with your parents and list income, savings, insurance and home "
                "equity. Many families are surprised to find the gap smaller than they feared.",
            ),
            (
                "Open a family care fund",
                "Automate {monthly} a month into a separate high-yield account labelled for "
                "care. After five years that's roughly {five_year} plus interest.",
            ),
            (
                "Get the paperwork done",
                "Healthcare proxy, durable power of attorney and a list of accounts. These cost "
                "little now and save enormous stress later.",
            ),
            (
                "Protect your own retirement",
                "Keep your {retirement_pct} retirement contribution untouched; the care fund "
                "sits next to it, not instead of it.",
            ),
        ),
        followups=(
            "We currently put about {monthly} a month into savings after all our bills.",
            "My {parent} has a small pension, and the house is paid off, which I forgot to "
            "mention.",
            "My sibling lives closer to them but earns a lot less, so I feel like the money part "
            "falls on me.",
        ),
        questions=(
            "How much should we realistically be setting aside each month?",
            "Is it irresponsible to put money toward this before our own retirement is fully "
            "on track?",
            "What should we be doing now while they're still healthy?",
        ),
        commitments=(
            "set up the separate care account this weekend",
            "have the conversation with my parents about their paperwork",
            "call about long-term care insurance quotes",
        ),
    ),
    Topic(
        key="stay_home_parent_finances",
        name="Single Income Family Planning",
        phrase="living on one income so a parent can stay home",
        situation=(
            "We're expecting our second child and we've been talking about one of us staying "
            "home for a few years.",
            "Together we bring home about {take_home} a month; on one income it would be closer "
            "to {one_income}.",
            "Childcare for two kids here would cost around {childcare} a month, which is a big "
            "part of the second paycheck anyway.",
        ),
        worry=(
            "losing financial security by giving up a second income",
            "the stay-home partner falling behind on retirement savings and career growth",
            "not being able to cover an emergency on a single paycheck",
        ),
        concepts=(
            "The real cost of staying home isn't the whole second salary; it's that salary minus "
            "childcare, commuting, work clothes and the extra taxes, which is often far smaller "
            "than people expect.",
            "A spousal IRA lets the working partner contribute to a retirement account in the "
            "stay-home partner's name, so that partner keeps building savings even without a "
            "paycheck.",
            "On a single income the emergency fund matters more, because one job now carries "
            "the whole household; six months of essential expenses is a sensible target.",
            "A trial run helps: living on one income for three months while both are still "
            "working shows you what's tight and banks the difference at the same time.",
        ),
        steps=(
            (
                "Run the real numbers",
                "Compare {one_income} against your essential expenses, not your current "
                "spending, so you see the true floor.",
            ),
            (
                "Do a three-month trial",
                "Live on one paycheck now and send the other to savings; that alone could add "
                "about {trial_savings} to your cushion.",
            ),
            (
                "Protect the stay-home partner",
                "Set up a spousal IRA and review life and disability insurance on the working "
                "partner.",
            ),
            (
                "Build the buffer",
                "Aim for six months of essentials, around {six_months}, before the switch.",
            ),
        ),
        followups=(
            "Our essential bills, rent, groceries, insurance, come to about {essentials} a month.",
            "We have about {emergency} in savings right now.",
            "I'm the one who would stay home, and I'm worried about what it does to my career.",
        ),
        questions=(
            "Can we actually afford this, or are we being naive?",
            "What would we need to have in place before making the switch?",
            "How do we make sure the stay-home parent isn't left exposed later?",
        ),
        commitments=(
            "start the one-income trial with next month's paychecks",
            "open the spousal IRA",
            "get a quote on term life insurance",
        ),
    ),
    Topic(
        key="refinancing_evaluation",
        name="Mortgage Refinancing Decision",
        phrase="whether refinancing the mortgage makes sense",
        situation=(
            "We have about {mortgage_balance} left on our mortgage at {old_rate}.",
            "A lender offered us {new_rate} with about {closing_costs} in closing costs.",
            "We might move for work in the next few years, though nothing is certain.",
        ),
        worry=(
            "paying thousands in closing costs and then moving before it pays off",
            "refinancing now and watching rates drop further next year",
            "getting talked into a loan that looks cheaper but costs more over time",
        ),
        concepts=(
            "The break-even point is the heart of a refinance: divide the closing costs by the "
            "monthly savings, and that's how many months you need to stay in the home before "
            "the refinance starts paying you back.",
            "Resetting to a new 30-year term can lower the payment while increasing total "
            "interest, so it's worth comparing the remaining term, not only the monthly amount.",
            "Nobody can predict rates reliably; the better question is whether this deal is good "
            "on its own numbers, given how long you expect to stay.",
            "A no-closing-cost refinance trades a slightly higher rate for no upfront cost, which "
            "can make sense when your time in the home is uncertain.",
        ),
        steps=(
            (
                "Calculate your break-even",
                "With about {monthly_savings} in monthly savings and {closing_costs} in costs, "
                "break-even is roughly {breakeven} months.",
            ),
            (
                "Match the term",
                "Ask for a quote on a term close to what you have left so you're comparing like "
                "with like.",
            ),
            (
                "Get two more quotes",
                "Lenders vary more than people think; three quotes is a reasonable standard.",
            ),
            (
                "Decide on your move horizon",
                "If there's a real chance you'll move before break-even, favour the lower-cost "
                "option.",
            ),
        ),
        followups=(
            "The new payment would be about {monthly_savings} less than what we pay now.",
            "We've been in the house {years_in_home} years and we like it, but my job might "
            "relocate us.",
            "The loan officer kept focusing on the lower payment and didn't mention the term.",
        ),
        questions=(
            "How do we know if the savings are worth the closing costs?",
            "Should we wait to see if rates go lower?",
            "What should we be asking the lender that we aren't?",
        ),
        commitments=(
            "ask two more lenders for quotes with a matching term",
            "work out our break-even on paper tonight",
            "talk honestly about how likely the move really is",
        ),
    ),
    Topic(
        key="mortgage_payoff_strategy",
        name="Accelerated Mortgage Payoff",
        phrase="paying the mortgage off early versus investing the difference",
        situation=(
            "We owe about {mortgage_balance} on the house at {old_rate}, with {years_left} years "
            "to go.",
            "We could put an extra {monthly} a month toward it, or invest that instead.",
            "My dad always said the best feeling in the world is owning your home outright.",
        ),
        worry=(
            "making the wrong call between paying down the house and investing",
            "tying up money in the house that you might need later",
            "staying in debt longer than necessary",
        ),
        concepts=(
            "Every extra dollar on the mortgage earns a guaranteed return equal to your interest "
            "rate; investing may earn more on average, but without the guarantee.",
            "Money paid into the house is hard to get back out quickly, so it's usually wise to "
            "have an emergency fund and retirement contributions in place first.",
            "The emotional return counts too: for many people the peace of mind of a paid-off "
            "home is worth a slightly lower expected return.",
            "You don't have to choose one; splitting the extra money is a perfectly reasonable "
            "plan, and you can change the split as life changes.",
        ),
        steps=(
            (
                "Confirm the foundations",
                "Emergency fund of three to six months and retirement contributions at least up "
                "to any employer match.",
            ),
            (
                "Pick a split",
                "For example, {half} a month to the mortgage and {half} to investments.",
            ),
            (
                "Automate it",
                "Set the extra principal payment and the investment transfer for payday so it "
                "happens without willpower.",
            ),
            (
                "Review once a year",
                "Revisit the split each year or whenever rates, income or goals change.",
            ),
        ),
        followups=(
            "We have about {emergency} in savings and we both get our full 401(k) match.",
            "Paying an extra {monthly} a month would cut about {years_cut} years off the loan.",
            "My partner likes the idea of investing more, I like the idea of owing nothing.",
        ),
        questions=(
            "Which one actually makes more sense for us?",
            "Is it silly to want the house paid off even if investing might earn more?",
            "How would you split the extra money?",
        ),
        commitments=(
            "set up the extra principal payment for the first of the month",
            "open the brokerage account for the other half",
            "put a reminder in the calendar to review the split next year",
        ),
    ),
    Topic(
        key="hiding_financial_problems",
        name="Financial Transparency in Relationships",
        phrase="being honest with a partner about hidden debt",
        situation=(
            "I have about {card_debt} on a credit card that my partner doesn't know about.",
            "It started with a few emergencies and then I kept using it to avoid awkward "
            "conversations.",
            "We're talking about buying a place together, which means it's going to come out "
            "anyway.",
        ),
        worry=(
            "damaging trust with your partner once the debt comes out",
            "being judged or seen as irresponsible",
            "the debt growing while it stays hidden",
        ),
        concepts=(
            "Financial secrecy is far more common than people admit, and it usually starts from "
            "wanting to protect someone, not from wanting to deceive them.",
            "The conversation tends to go better when it comes with a plan: here's what happened, "
            "here's what I owe, and here's how I intend to pay it down.",
            "A card at {card_rate} interest is costing you roughly {interest_month} a month just "
            "in interest, so the sooner it's addressed the cheaper it gets.",
            "Many couples find a 'yours, mine and ours' structure helps: a joint account for "
            "shared bills and individual accounts for personal spending, with full visibility.",
        ),
        steps=(
            (
                "Write down the full picture",
                "Balance, rate, minimum payment and how it happened, in a few honest sentences.",
            ),
            (
                "Draft a payoff plan",
                "At {monthly} a month the balance is gone in about {payoff_months} months.",
            ),
            (
                "Choose the moment",
                "A calm evening, not right after an argument or before a big purchase.",
            ),
            (
                "Agree on future check-ins",
                "A short monthly money date keeps surprises from building up again.",
            ),
        ),
        followups=(
            "The minimum payment is about {min_payment} and I've been paying just that.",
            "My partner is pretty careful with money, which is part of why I'm so scared.",
            "I think I could put about {monthly} a month toward it if I cut back.",
        ),
        questions=(
            "How do I even start that conversation?",
            "Should I pay some of it down first so it looks less bad?",
            "How do we make sure this doesn't happen again?",
        ),
        commitments=(
            "talk to my partner this weekend",
            "bring the written payoff plan to that conversation",
            "set up our first monthly money check-in",
        ),
    ),
    Topic(
        key="estate_planning_basics",
        name="Estate Planning Basics",
        phrase="getting a will and basic estate documents in place",
        situation=(
            "We have two kids and no will, which I know is bad.",
            "Our assets are the house, about {retirement_balance} in retirement accounts and a "
            "life insurance policy through work.",
            "Every time we start looking into it we get stuck on who would be guardian.",
        ),
        worry=(
            "leaving the kids unprotected if something happened",
            "family conflict over decisions you never made",
            "the cost and complexity of estate documents",
        ),
        concepts=(
            "For most families, basic estate planning is four documents: a will, beneficiary "
            "designations, a durable power of attorney and a healthcare directive.",
            "Beneficiary designations on retirement accounts and life insurance override the "
            "will, so checking them is one of the highest-value fifteen minutes you can spend.",
            "A revocable living trust is useful in some situations, such as property in several "
            "states or a wish to avoid probate, but many families don't need one to start.",
            "Choosing a guardian doesn't have to be perfect; you can name someone now and update "
            "it as the kids and your family change.",
        ),
        steps=(
            (
                "Check beneficiaries today",
                "Log in to each retirement account and the insurance policy and confirm who is "
                "listed.",
            ),
            (
                "Decide on a guardian",
                "Pick a first choice and a backup; you can revise it later.",
            ),
            (
                "Draft the documents",
                "A local attorney typically charges around {attorney_fee} for a basic package.",
            ),
            (
                "Store and share",
                "Keep originals somewhere safe and tell the executor where they are.",
            ),
        ),
        followups=(
            "The work life insurance is about two times my salary, so around {insurance}.",
            "My partner's sister would be the obvious guardian, but she lives across the country.",
            "I checked and my old 401(k) still lists my mom as beneficiary.",
        ),
        questions=(
            "Where do we even start?",
            "Do we need a trust or is a will enough?",
            "How much is this going to cost us?",
        ),
        commitments=(
            "update the beneficiaries on my old 401(k)",
            "book the consultation with the estate attorney",
            "have the guardian conversation over the weekend",
        ),
    ),
    Topic(
        key="hsa_vs_fsa_decision",
        name="HSA vs FSA Decision",
        phrase="choosing between an HSA and an FSA at open enrollment",
        situation=(
            "Open enrollment closes in {deadline_days} days and I have to choose between a "
            "high-deductible plan with an HSA and a regular plan with an FSA.",
            "We spent about {medical_spend} on medical costs last year, mostly prescriptions and "
            "a couple of urgent care visits.",
            "My employer puts {employer_hsa} into the HSA if I pick that plan.",
        ),
        worry=(
            "picking the wrong plan and losing money",
            "forfeiting FSA money you don't spend by the deadline",
            "a large deductible if something serious happens",
        ),
        concepts=(
            "An FSA is 'use it or lose it' within the plan year, while an HSA belongs to you, "
            "rolls over every year and can even be invested.",
            "The HSA comes with a high-deductible plan, so the real comparison is total yearly "
            "cost: premiums plus expected out-of-pocket spending minus any employer "
            "contribution.",
            "HSA money goes in before tax, grows tax-free and comes out tax-free for medical "
            "costs, which makes it one of the most tax-efficient accounts available.",
            "If you choose the high-deductible plan, keeping cash equal to the deductible in the "
            "HSA turns the scary worst case into a known number.",
        ),
        steps=(
            (
                "Add up both plans",
                "Premiums plus last year's spending of about {medical_spend} under each plan.",
            ),
            (
                "Check the worst case",
                "Compare the out-of-pocket maximums, not only the deductibles.",
            ),
            (
                "Fund the deductible",
                "If you pick the HSA, build the balance toward the deductible of {deductible}.",
            ),
            (
                "Set the contribution",
                "Spread the contribution over paychecks so it doesn't pinch any one month.",
            ),
        ),
        followups=(
            "The high-deductible plan's premium is about {premium_diff} a month cheaper.",
            "The deductible on the HSA plan is {deductible}, which scares me a little.",
            "Last year I lost about {fsa_lost} of FSA money because I forgot to use it.",
        ),
        questions=(
            "Which one makes more sense for someone like me?",
            "What happens if I have a big medical bill early in the year?",
            "How much should I actually put in?",
        ),
        commitments=(
            "compare the total yearly cost of both plans tonight",
            "enroll before the deadline",
            "set up the payroll contribution",
        ),
    ),
    Topic(
        key="market_crash_fears",
        name="Investing Through Market Volatility",
        phrase="staying invested when the market drops",
        situation=(
            "Our retirement accounts dropped about {drop_pct} over the last few weeks.",
            "We have roughly {retirement_balance} saved and we're about {years_to_retire} years "
            "from retirement.",
            "A coworker moved everything to cash and keeps telling me I should too.",
        ),
        worry=(
            "losing years of savings in a crash",
            "selling at the bottom and locking in losses",
            "not having enough time to recover before retirement",
        ),
        concepts=(
            "Declines of ten to twenty percent happen every few years; they feel unique every "
            "time, but historically they have been part of how long-term returns are earned.",
            "A loss is only locked in when you sell; if you don't need the money for "
            "{years_to_retire} years, today's price matters much less than the price when you "
            "withdraw.",
            "Your allocation, the mix of stocks and bonds, is the real risk dial. If a drop like "
            "this keeps you up at night, the mix may be too aggressive for you, and that's "
            "fixable without panic selling.",
            "Keeping one to two years of planned withdrawals in cash or bonds means a downturn "
            "never forces you to sell stocks at a low point.",
        ),
        steps=(
            (
                "Don't act this week",
                "Make no changes for seven days; decisions made in fear are rarely the ones we "
                "keep.",
            ),
            (
                "Review your allocation",
                "Check whether your current stock/bond mix still matches your timeline.",
            ),
            (
                "Build a safety bucket",
                "Hold about {emergency} in cash so short-term needs never touch investments.",
            ),
            (
                "Keep contributing",
                "Your regular {monthly} contribution is now buying at lower prices.",
            ),
        ),
        followups=(
            "We're in a target-date fund, mostly stocks from what I can tell.",
            "I've checked the balance every day this week, sometimes several times.",
            "We have about {emergency} in cash outside of the retirement accounts.",
        ),
        questions=(
            "Should we move some of it to something safer?",
            "How do we know if this is a normal drop or the start of something worse?",
            "What would you do in our position?",
        ),
        commitments=(
            "stop checking the balance every day",
            "review our allocation with you next month",
            "keep the contributions going",
        ),
    ),
    Topic(
        key="wedding_debt_vs_house",
        name="Wedding Debt vs. Home Down Payment",
        phrase="paying off wedding debt versus saving for a house",
        situation=(
            "We have about {card_debt} left from the wedding on two credit cards.",
            "We also want to buy a house in the next couple of years and we've saved "
            "{down_payment} toward a down payment.",
            "Rent keeps going up, so waiting feels expensive too.",
        ),
        worry=(
            "staying stuck renting while paying off the wedding",
            "carrying high-interest debt into a mortgage application",
            "arguing about which goal comes first",
        ),
        concepts=(
            "Credit card interest at {card_rate} is almost certainly more than your savings "
            "earn, so each dollar of that debt paid off is a guaranteed high return.",
            "Lenders look at your debt-to-income ratio; lowering card balances can improve both "
            "that ratio and your credit score, which can mean a better mortgage rate.",
            "This doesn't have to be either/or: a split that clears the cards quickly while "
            "keeping the down payment fund growing protects both goals.",
            "The wedding debt isn't a failure; it paid for something you valued, and now it's "
            "just a balance with a timeline.",
        ),
        steps=(
            (
                "Attack the highest rate",
                "Put {debt_share} a month on the card with the highest rate, minimums on the "
                "other.",
            ),
            (
                "Keep the house fund alive",
                "Continue {house_share} a month into the down payment account.",
            ),
            (
                "Set a milestone date",
                "At this pace the cards are cleared in about {payoff_months} months.",
            ),
            (
                "Redirect when done",
                "Once the cards are paid, the full amount rolls into the house fund.",
            ),
        ),
        followups=(
            "Between us we can put about {monthly} a month toward both goals.",
            "One card is at {card_rate}, the other has a promo rate that ends next year.",
            "My partner wants to throw everything at the house fund and deal with the cards later.",
        ),
        questions=(
            "Which should come first?",
            "How long would it take to do both?",
            "Will the credit card debt hurt our mortgage application?",
        ),
        commitments=(
            "set up the split starting next payday",
            "call about the promo rate end date",
            "put the milestone date on our fridge",
        ),
    ),
    Topic(
        key="emergency_fund_building",
        name="Building an Emergency Fund",
        phrase="building an emergency fund from almost nothing",
        situation=(
            "We have about {small_savings} in savings, which wouldn't cover one bad month.",
            "Last year the car needed {car_repair} in repairs and it went straight on a credit "
            "card.",
            "Our take-home is about {take_home} a month and most of it is spoken for.",
        ),
        worry=(
            "one unexpected bill sending you into debt",
            "never being able to save enough to matter",
            "choosing between saving and paying down debt",
        ),
        concepts=(
            "An emergency fund is insurance you pay yourself; it doesn't have to be six months on "
            "day one. A starter fund of {starter} already covers most car repairs and medical "
            "copays.",
            "Automating even a small transfer on payday works better than saving what's left at "
            "the end of the month, because there rarely is anything left.",
            "Keeping the fund in a separate high-yield account makes it slightly harder to dip "
            "into and lets it earn something while it waits.",
            "Irregular windfalls, like a tax refund or a bonus, can jump-start the fund without "
            "changing your monthly budget at all.",
        ),
        steps=(
            (
                "Start small and automatic",
                "Transfer {small_monthly} every payday into a separate account.",
            ),
            (
                "Set a starter goal",
                "Aim for {starter} first, then one month of expenses.",
            ),
            (
                "Use windfalls",
                "Send half of any refund or bonus straight to the fund.",
            ),
            (
                "Define 'emergency'",
                "Write down what counts, so the fund isn't used for things that aren't.",
            ),
        ),
        followups=(
            "I could probably find {small_monthly} every paycheck if I'm honest.",
            "We usually get a tax refund of around {refund}.",
            "We also have a little credit card debt, so I don't know which to focus on.",
        ),
        questions=(
            "How much do we actually need?",
            "Should we save first or pay down the card first?",
            "Where should we keep the money?",
        ),
        commitments=(
            "open the high-yield savings account today",
            "set the automatic transfer for payday",
            "put half of the tax refund in the fund",
        ),
    ),
    Topic(
        key="rsu_equity_compensation",
        name="Understanding RSUs and Stock Options",
        phrase="making sense of RSUs and stock options",
        situation=(
            "About {rsu_value} of RSUs vest over the next year, plus some options I don't "
            "understand.",
            "I've just been letting shares pile up in the brokerage account my company set up.",
            "Last April I owed {tax_bill} more in taxes than I expected and I think it was "
            "because of the stock.",
        ),
        worry=(
            "a surprise tax bill from vesting stock",
            "having too much of your net worth tied to one company",
            "making an expensive mistake with the options",
        ),
        concepts=(
            "RSUs are taxed as ordinary income when they vest, as if you'd received a cash bonus "
            "and bought the stock; withholding is often at a flat rate that can be lower than "
            "your actual bracket.",
            "Holding vested RSUs is effectively choosing to buy your employer's stock with that "
            "bonus; a useful test is whether you'd buy the same amount with cash.",
            "Concentration risk means your salary and your savings depend on the same company; "
            "many planners suggest keeping a single stock under ten percent of your investments.",
            "Stock options are different: they give the right to buy at a fixed price, and the "
            "type (ISO or NSO) changes how and when they're taxed.",
        ),
        steps=(
            (
                "List what you hold",
                "Write down vested shares, unvested RSUs and each option grant with its strike "
                "price and expiry.",
            ),
            (
                "Fix the withholding gap",
                "Set aside about {tax_reserve} for next year's tax difference.",
            ),
            (
                "Decide on a sell rule",
                "For example, sell a set share of each vest and diversify the proceeds.",
            ),
            (
                "Get the options reviewed",
                "Check option types and expiry dates before deciding anything on them.",
            ),
        ),
        followups=(
            "The company stock is now about {concentration} of everything I own.",
            "My options have a strike price way below the current price, if that matters.",
            "I don't think I've ever sold a single share.",
        ),
        questions=(
            "Should I be selling some of this?",
            "How do I avoid another tax surprise?",
            "What do I do about the options?",
        ),
        commitments=(
            "make the list of all my grants",
            "move money aside for the tax gap",
            "set a standing sell rule for future vests",
        ),
    ),
    Topic(
        key="credit_card_debt_payoff",
        name="Credit Card Debt Payoff Plan",
        phrase="paying off credit card debt across several cards",
        situation=(
            "I have {card_debt} spread across three cards.",
            "The rates are between {low_card_rate} and {card_rate}.",
            "I pay a bit more than the minimums but the balances barely move.",
        ),
        worry=(
            "never getting out of credit card debt",
            "picking the wrong payoff method",
            "relying on the cards again for the next emergency",
        ),
        concepts=(
            "The avalanche method pays the highest-rate card first and saves the most interest; "
            "the snowball pays the smallest balance first and builds momentum. Both work if "
            "you stick with them.",
            "A balance transfer card can pause interest for a while, but the transfer fee and "
            "the rate after the promotion matter as much as the zero percent headline.",
            "A small buffer of savings keeps new emergencies from landing on the cards while you "
            "pay them down.",
            "Seeing the payoff date is motivating: at your current pace, most of the payment is "
            "going to interest, and a modest increase changes the timeline dramatically.",
        ),
        steps=(
            (
                "List every card",
                "Balance, rate and minimum payment in one place.",
            ),
            (
                "Pick your method",
                "Avalanche saves more, snowball feels faster; choose the one you'll keep doing.",
            ),
            (
                "Set a fixed payment",
                "Commit {monthly} a month in total, every month, even as minimums fall.",
            ),
            (
                "Protect the plan",
                "Keep a {starter} buffer so a flat tire doesn't go back on a card.",
            ),
        ),
        followups=(
            "I could do about {monthly} a month total if I'm strict.",
            "One card is almost paid off already, it only has about {small_balance} left.",
            "I got an offer for a balance transfer at zero percent for eighteen months.",
        ),
        questions=(
            "Which card should I pay first?",
            "Is a balance transfer a good idea or a trap?",
            "How long will this realistically take?",
        ),
        commitments=(
            "make the list of all three cards tonight",
            "set up the fixed monthly payment",
            "read the fine print on the balance transfer offer",
        ),
    ),
)

# Consultant-side generic sentence banks --------------------------------------------------------

_NORMALIZE = (
    "You are in very good company here; this is one of the questions I hear most often from "
    "people at exactly your stage of life.",
    "Nearly every client I work with has a version of this on their mind, even the ones who "
    "look like they have it all figured out.",
    "There's nothing unusual about feeling this way, and nothing about it says you've done "
    "anything wrong.",
    "Plenty of thoughtful, capable people get stuck right where you are, usually because nobody "
    "ever walked them through it.",
    "It's completely normal for this to feel bigger in your head than it does on paper.",
)

_REFLECT = (
    "Let me name what I'm hearing:",
    "Here's what I hear underneath your question:",
    "If I'm understanding you correctly,",
    "Let me reflect back what I think is going on:",
)

_PERMISSION = (
    "Would it be okay if I walked you through how I'd think about this, one piece at a time?",
    "Before we go further, can I share a simple way of looking at this that many of my clients "
    "find helpful?",
    "If you're open to it, I'd like to explain the one idea that makes the rest of this much "
    "easier to decide.",
    "May I ask a few questions first, so that what I suggest fits your real situation?",
)

_MID_ACK = (
    "Thank you for sharing those numbers; they make this much more concrete.",
    "This is really helpful detail, and honestly it's more encouraging than you might think.",
    "I'm glad you came back with this, because it changes the picture in a good way.",
    "That's exactly the information I was hoping for, thank you.",
    "I can already see a lot of thought went into this, and it shows.",
)

_MID_VALIDATE = (
    "I also want to acknowledge the shift I'm hearing in how you talk about this; that matters.",
    "Notice that you're asking much more specific questions now. That's what clarity sounds "
    "like as it starts to form.",
    "It's okay that some of the worry is still there; it doesn't have to be gone for you to "
    "make a good decision.",
    "You're doing the hard part, which is looking directly at the situation instead of around it.",
)

_REFRAME = (
    "Here's the reframe I'd offer: this isn't a test you pass or fail, it's a plan you adjust as "
    "you learn.",
    "Progress over perfection: a plan you'll follow at eighty percent beats a perfect plan you "
    "never start.",
    "The goal isn't to make the one right decision forever; it's to make a good decision for the "
    "next twelve months and revisit it.",
    "Remember that doing something modest and consistent almost always beats waiting for the "
    "ideal moment.",
    "Whatever you choose here can be changed later, and that flexibility is part of the plan, "
    "not a weakness in it.",
)

_METAPHORS = (
    "I often compare this to packing for a long trip: you don't need to pack everything "
    "tonight, you need a list, a suitcase and the first few items in it. The rest follows.",
    "Think of it like the safety instructions on a plane: you put your own mask on first, not "
    "because others don't matter, but because you can only help them if you can breathe.",
    "A useful picture is a set of buckets on a shelf. Each one has a job, and once you know "
    "which bucket a dollar belongs in, most of the agonizing goes away.",
    "It's a bit like learning to drive: at first every mirror and pedal needs your full "
    "attention, and a few months later you do it while talking about something else.",
    "Picture two dials rather than one switch. You don't have to turn one goal fully on and the "
    "other fully off; you can set each of them partway and adjust later.",
    "I think of a plan like a trail map. It won't tell you about every rock on the path, but it "
    "keeps you pointed the right way when the ground gets uneven.",
)

_CLOSE_Q = (
    "How does that land for you?",
    "Does this feel doable, or is there a part that still feels heavy?",
    "What feels like the right first step from here?",
    "Which part of this would you like to go deeper on?",
    "Is there anything in this that doesn't fit your situation?",
)

_PROGRESS = (
    "I want to pause and point out how far you've come in this one conversation.",
    "Look at what you've done here: you came in with a knot of worry and you're leaving with a "
    "plan.",
    "This is real progress, and I hope you'll give yourself credit for it.",
    "You should feel good about this. What you've just described is a thoughtful, grounded plan.",
)

_FINAL = (
    "You don't have to do all of it this week. Start with the first step and let the momentum "
    "carry you.",
    "If anything changes, or if the worry creeps back, come back and we'll adjust together.",
    "I'm genuinely glad you reached out, and I'm confident you can do this.",
    "Write the first step down somewhere you'll see it, and check in with me once it's done.",
)

_USER_ACK = (
    "Okay, that actually helps a lot.",
    "Thank you, I really needed to hear that.",
    "That makes me feel a little better already.",
    "Okay. I didn't expect that answer, but it makes sense.",
    "Thanks for not making me feel stupid about this.",
)

_USER_CLOSE = (
    "Thank you so much, this is the clearest I've felt about this in a long time.",
    "I really appreciate you walking me through all of this.",
    "This was so much more helpful than the last month of reading articles.",
    "Okay, I think I'm ready. Thank you for being patient with me.",
)

_REVIEWER_NOTES = (
    "Strong validation in the opening; numbers are specific and consistent across turns.",
    "Good pacing. Consider shortening the educational section slightly.",
    "Excellent example of asking permission before teaching.",
    "Tone is warm without being saccharine; keep as a seed example.",
    "Minor: one step list is a little long for an overwhelmed client.",
    "Reframe lands well. Closing question keeps the client engaged.",
    "Accurate content; the emotional acknowledgment could be more explicit in turn 2.",
    "Approved after edit: removed one piece of jargon.",
    "Clear both/and framing and concrete figures; good training signal.",
    "Reviewed for factual accuracy; no issues found.",
)

_PARTNERS = ("Sam", "Priya", "Alex", "Jordan", "Tomás", "Rachel", "Mei", "Chris", "Dana", "Nate")
_PARENTS = ("mom", "dad")

_EXTRA_KEYS = (
    ("dataset_metadata", "generator_revision", "enrichment-pipeline r{rev}"),
    ("conversation_metadata", "client_segment", "mid-career"),
    ("training_metadata", "review_batch", "batch-{rev}"),
    ("dataset_metadata", "source_template_id", "tmpl-{rev}"),
)

_SKILLS = (
    "emotional_validation",
    "normalizing_struggle",
    "permission_before_education",
    "concrete_numbers",
    "reframing",
    "progress_celebration",
    "values_alignment",
    "both_and_framing",
)

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def _money(value: float) -> str:
    return f"${round(value):,}"


def _num(value: float) -> float | int:
    """One decimal; whole numbers as int (like the JavaScript-produced real files)."""
    r = round(value, 1)
    return int(r) if r == int(r) else r


def _clip(value: float, lo: float = 1.0, hi: float = 5.0) -> float:
    return max(lo, min(hi, value))


def _scaffold_id(kind: str, key: str) -> str:
    """Stable id for a persona / arc / topic row, the same for every seed."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://demo.invalid/{kind}/{key}"))


def _facts(rng: random.Random) -> dict[str, str]:
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
        "monthly": _money(monthly),
        "half": _money(monthly / 2),
        "five_year": _money(monthly * 60),
        "parent_age": f"in their {rng.choice(('late 60s', 'early 70s', 'mid 70s'))}",
        "parent": rng.choice(_PARENTS),
        "care_hour": _money(rng.randrange(28, 42)),
        "care_month": _money(care_month),
        "parent_savings": _money(rng.randrange(40_000, 220_000, 5_000)),
        "retirement_pct": f"{rng.randrange(8, 16)}%",
        "take_home": _money(take_home),
        "one_income": _money(take_home * rng.uniform(0.5, 0.62)),
        "childcare": _money(rng.randrange(1_800, 3_600, 100)),
        "trial_savings": _money(take_home * 0.42 * 3),
        "six_months": _money(essentials * 6),
        "essentials": _money(essentials),
        "emergency": _money(rng.randrange(6_000, 38_000, 500)),
        "mortgage_balance": _money(mortgage),
        "old_rate": f"{old_rate:.2f}%",
        "new_rate": f"{new_rate:.2f}%",
        "closing_costs": _money(closing),
        "monthly_savings": _money(monthly_savings),
        "breakeven": str(max(1, round(closing / monthly_savings))),
        "years_in_home": str(rng.randrange(2, 9)),
        "years_left": str(rng.randrange(18, 28)),
        "years_cut": str(rng.randrange(4, 10)),
        "card_debt": _money(card_debt),
        "card_rate": f"{card_rate}%",
        "low_card_rate": f"{card_rate - rng.choice((4, 6, 8)):.1f}%",
        "interest_month": _money(card_debt * card_rate / 100 / 12),
        "min_payment": _money(max(35, card_debt * 0.025)),
        "payoff_months": str(payoff_months),
        "retirement_balance": _money(rng.randrange(60_000, 640_000, 5_000)),
        "attorney_fee": _money(rng.randrange(1_200, 3_200, 100)),
        "insurance": _money(rng.randrange(140_000, 360_000, 10_000)),
        "deadline_days": str(rng.randrange(3, 12)),
        "medical_spend": _money(rng.randrange(900, 5_200, 50)),
        "employer_hsa": _money(rng.choice((500, 750, 1_000, 1_500))),
        "deductible": _money(deductible),
        "premium_diff": _money(rng.randrange(60, 220, 5)),
        "fsa_lost": _money(rng.randrange(120, 600, 10)),
        "drop_pct": f"{rng.randrange(9, 24)}%",
        "years_to_retire": str(rng.randrange(12, 30)),
        "down_payment": _money(rng.randrange(8_000, 45_000, 500)),
        "debt_share": _money(monthly * 0.65),
        "house_share": _money(monthly * 0.35),
        "small_savings": _money(rng.randrange(150, 900, 10)),
        "car_repair": _money(rng.randrange(900, 2_600, 50)),
        "starter": _money(starter),
        "small_monthly": _money(small_monthly),
        "refund": _money(rng.randrange(900, 3_400, 50)),
        "rsu_value": _money(rng.randrange(40_000, 180_000, 1_000)),
        "tax_bill": _money(rng.randrange(3_000, 14_000, 100)),
        "tax_reserve": _money(rng.randrange(3_000, 12_000, 250)),
        "concentration": f"{rng.randrange(25, 60)}%",
        "small_balance": _money(rng.randrange(300, 1_400, 10)),
    }


def _lower_first(text: str) -> str:
    if text.startswith(("I ", "I'")):
        return text
    return text[:1].lower() + text[1:]


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fmt(text: str, ctx: dict[str, str]) -> str:
    return text.format_map(ctx)


def _pick(rng: random.Random, pool: tuple[str, ...], k: int) -> list[str]:
    return rng.sample(pool, min(k, len(pool)))


# ---------------------------------------------------------------------------------------------
# Text composition
# ---------------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    rng: random.Random
    persona: Persona
    arc: Arc
    topic: Topic
    facts: dict[str, str]
    couple: bool

    def f(self, text: str) -> str:
        return _fmt(text, self.facts)


def _user_message(c: _Ctx, u: int, n_user: int) -> str:
    rng, p, a, t = c.rng, c.persona, c.arc, c.topic
    stage = 0 if u == 0 else (2 if u == n_user - 1 else 1)
    parts: list[str] = []
    if stage == 0:
        parts.append(rng.choice(p.openers))
        parts.extend(c.f(s) for s in _pick(rng, t.situation, rng.randint(2, 3)))
        parts.append(rng.choice(p.traits))
        parts.extend(c.f(s) for s in _pick(rng, a.feelings_start, rng.randint(1, 2)))
        if c.couple:
            parts.append(
                c.f(
                    "{partner} sees it completely differently and thinks we should focus on "
                    "something else first, and every time we talk about it we end up going in "
                    "circles."
                )
            )
        parts.append(rng.choice(t.questions))
        if rng.random() < 0.5:
            parts.append(rng.choice(t.questions))
    elif stage == 1:
        parts.append(rng.choice(_USER_ACK))
        parts.append(c.f(rng.choice(a.feelings_mid)))
        parts.extend(c.f(s) for s in _pick(rng, t.followups, rng.randint(2, 3)))
        parts.append(rng.choice(p.traits))
        if rng.random() < 0.6:
            parts.append("If I'm following you, " + _lower_first(c.f(rng.choice(t.steps)[1])))
        parts.append(rng.choice(p.residual))
        parts.append(rng.choice(t.questions))
    else:
        parts.append(rng.choice(_USER_CLOSE))
        parts.append(c.f(rng.choice(a.feelings_end)))
        commits = _pick(rng, t.commitments, 2)
        parts.append(f"So my plan is to {commits[0]}, and then {commits[1]}.")
        parts.append(rng.choice(p.residual))
        parts.append(
            rng.choice(
                (
                    "Is there anything I'm missing before I get started?",
                    "Does that sound like the right order to you?",
                    "Should I check back in with you once the first part is done?",
                )
            )
        )
    return " ".join(parts)


def _steps_block(c: _Ctx, k: int) -> str:
    chosen = c.rng.sample(range(len(c.topic.steps)), min(k, len(c.topic.steps)))
    chosen.sort()
    lines = []
    for i, idx in enumerate(chosen, start=1):
        title, body = c.topic.steps[idx]
        lines.append(f"**Step {i} - {title}:** {c.f(body)}")
    return "\n\n".join(lines)


def _coach_message(c: _Ctx, u: int, n_user: int) -> str:
    rng, p, a, t = c.rng, c.persona, c.arc, c.topic
    stage = 0 if u == 0 else (2 if u == n_user - 1 else 1)
    first = p.first
    paras: list[str] = []
    if stage == 0:
        paras.append(f"{first}, {_lower_first(rng.choice(a.validation))} {rng.choice(_NORMALIZE)}")
        worries = _pick(rng, t.worry, 2)
        paras.append(
            f"{rng.choice(_REFLECT)} part of you is worried about {worries[0]}, and part of you "
            f"is worried about {worries[1]}. Both of those concerns are legitimate. I also think "
            f"{rng.choice(p.insight)}."
        )
        if c.couple:
            paras.append(
                c.f(
                    "And I want to be clear that this isn't about who is right. You and "
                    "{partner} are each protecting something important, and the either/or "
                    "framing is what makes it feel impossible. Our job is to find the version "
                    "that honors both of you."
                )
            )
        paras.append(" ".join(c.f(s) for s in _pick(rng, t.concepts, rng.randint(1, 2))))
        if rng.random() < 0.6:
            paras.append(rng.choice(_METAPHORS))
        paras.append(f"{rng.choice(_PERMISSION)} {rng.choice(t.questions)}")
    elif stage == 1:
        paras.append(f"{first}, {_lower_first(rng.choice(_MID_ACK))} {rng.choice(_MID_VALIDATE)}")
        paras.append(" ".join(c.f(s) for s in _pick(rng, t.concepts, rng.randint(2, 3))))
        if rng.random() < 0.5:
            paras.append(rng.choice(_METAPHORS))
        paras.append(
            rng.choice(
                (
                    "Here's how I'd put this into practice:",
                    "Let's turn that into something concrete with your numbers:",
                    "If we translate that into steps, it looks like this:",
                )
            )
        )
        paras.append(_steps_block(c, rng.randint(2, 4)))
        paras.append(f"{rng.choice(_REFRAME)} {rng.choice(_NORMALIZE)}")
        paras.append(" ".join(_pick(rng, _CLOSE_Q, 2)))
    else:
        paras.append(f"{first}, {_lower_first(rng.choice(_PROGRESS))} {rng.choice(_MID_VALIDATE)}")
        paras.append("Here's the plan in one place, so you can come back to it:")
        paras.append(_steps_block(c, rng.randint(3, 4)))
        paras.append(f"{rng.choice(_REFRAME)} {_upper_first(rng.choice(p.insight))}.")
        paras.append(" ".join(_pick(rng, _FINAL, 2)))
    return "\n\n".join(paras)


def _stage_index(u: int, n_user: int, size: int) -> int:
    if n_user <= 1:
        return 0
    return min(size - 1, round(u * (size - 1) / (n_user - 1)))


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def _quality_base(rng: random.Random, index: int) -> tuple[float, bool]:
    """Base score for the conversation and whether every pair gets the same integer score."""
    bucket = (index * 53 + 29) % 100
    if bucket < 8:
        return rng.choice((1.0, 1.4, 1.8, 2.0, 2.2, 2.4)), False
    if bucket < 14:
        return 5.0, True
    if bucket < 30:
        return rng.choice((4.5, 4.6, 4.7, 4.8, 4.9)), False
    if bucket < 40:
        return rng.choice((2.5, 2.7, 2.9)), False
    base = rng.choice((3.0, 3.0, 3.0, 3.2, 3.4, 3.5, 3.6, 3.8, 4.0, 4.0, 4.2, 4.4))
    return base, base in (3.0, 4.0) and rng.random() < 0.6


def _tier(score: float) -> str:
    if score >= 4.5:
        return "seed_dataset"
    if score >= 3.5:
        return "production"
    if score >= 2.5:
        return "experimental"
    return "rejected"


def generate_conversation(rng: random.Random, index: int) -> dict:
    """Compose one enriched conversation; the result depends only on ``rng``'s state and
    ``index`` (``index`` fixes the drift / quality / review category, see the module doc)."""
    drift = (index * 37 + 11) % 100
    older = drift < 25
    with_input_parameters = 25 <= drift < 85
    extra_key = None
    if (index * 29 + 5) % 20 == 0:
        extra_key = _EXTRA_KEYS[(index // 20) % len(_EXTRA_KEYS)]
    reviewed = (index * 71 + 3) % 10 < 2

    persona = rng.choice(PERSONAS)
    arc = ARCS[4] if rng.random() < 0.15 else rng.choice(ARCS[:4])
    topic = rng.choice(TOPICS)
    couple = arc.key == "couple_conflict_to_alignment"
    facts = _facts(rng)
    facts["partner"] = rng.choice(_PARTNERS)
    c = _Ctx(rng, persona, arc, topic, facts, couple)

    conv_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    created = _dt.date(2025, 1, 1) + _dt.timedelta(days=rng.randrange(365))
    n_turns = rng.choice((4, 5, 6, 6, 6, 7, 7, 8, 8, 8, 9, 9, 10, 10, 11, 12))
    n_user = (n_turns + 1) // 2
    system_prompt = rng.choice(_SYSTEM_PROMPTS)

    # Phase plan: progressing through the enum (most files), constant (some, as in real data),
    # or out-of-enum values (couple arc; overwhelm "breakdown" opener).
    phase_mode = rng.random()
    if couple:
        constant = rng.choice(("couple_conflict_to_alignment", "couple_conflict_resolution"))
        phases = [constant] * n_turns
    elif phase_mode < 0.15:
        phases = [arc.first_phase] * n_turns
    else:
        opening = arc.first_phase
        if arc.key == "overwhelm_to_empowerment" and phase_mode > 0.7:
            opening = "initial_overwhelm_breakdown"
        phases = []
        for turn in range(1, n_turns + 1):
            u = (turn - 1) // 2
            if u == 0:
                phases.append(opening)
            elif u == n_user - 1:
                phases.append("commitment_and_closure")
            elif u / (n_user - 1) < 0.5:
                phases.append("exploring_deeper_concern")
            else:
                phases.append("practical_implementation")

    age = rng.randint(*persona.ages)
    if older and rng.random() < 0.5:
        background = f"[object Object]; {persona.profile}"
    else:
        background = (
            f"Age {age}, {persona.gender}, {rng.choice(persona.settings)}, "
            f"{rng.choice(persona.households)}; {persona.profile}"
        )
    session_context = _fmt(
        rng.choice(arc.session), {"first": persona.first, "phrase": topic.phrase, **facts}
    )
    expected_outcome = _fmt(rng.choice(arc.outcome), {"phrase": topic.phrase})

    base, constant_score = _quality_base(rng, index)
    if older:
        skills = list(rng.sample([p.key for p in PERSONAS], rng.randint(2, 3)))
        objective = rng.choice(TOPICS).key
    else:
        skills = sorted(rng.sample(_SKILLS, rng.randint(3, 5)))
        objective = topic.key
    progression = f"{arc.start}(0.8) → {arc.end}(0.8)"
    review_share = rng.uniform(0.7, 1.0) if reviewed else 0.0
    seed_example = base >= 4.5
    variations = rng.choice((3, 5, 8, 10)) if seed_example else 0
    rev = str(rng.randrange(100, 999))

    # Compose the dialogue: alternating user / consultant turns.
    turns: list[dict[str, Any]] = []
    for turn in range(1, n_turns + 1):
        u = (turn - 1) // 2
        if turn % 2 == 1:
            content = _user_message(c, u, n_user)
            emo = arc.user_emotions[_stage_index(u, n_user, len(arc.user_emotions))]
            intensity = _clip(0.85 - 0.35 * u / max(1, n_user - 1) + rng.uniform(-0.06, 0.06), 0, 1)
            if u == n_user - 1 and n_user > 1:
                valence = "positive"
            elif u == 0:
                valence = rng.choice(("negative", "negative", "mixed"))
            else:
                valence = rng.choice(("mixed", "positive", "negative"))
        else:
            content = _coach_message(c, u, n_user)
            emo = arc.coach_emotions[_stage_index(u, n_user, len(arc.coach_emotions))]
            intensity = _clip(0.6 + rng.uniform(-0.12, 0.2), 0, 1)
            valence = rng.choice(("mixed", "mixed", "positive"))
        turns.append(
            {
                "role": "user" if turn % 2 == 1 else "assistant",
                "content": content,
                "primary": emo[0],
                "secondary": emo[1],
                "intensity": round(intensity, 2),
                "valence": valence,
                "primary_confidence": round(rng.uniform(0.7, 0.95), 2),
                "secondary_confidence": round(rng.uniform(0.55, 0.8), 2),
            }
        )

    pairs: list[dict[str, Any]] = []
    scores: list[float] = []
    history: list[dict[str, Any]] = []
    user_input = ""
    for turn, t in enumerate(turns, start=1):
        if t["role"] == "user":
            user_input = t["content"]
        meta: dict[str, Any] = {
            "client_persona": f"{persona.name} - {persona.label}",
            "client_background": background,
            "session_context": session_context,
            "conversation_phase": phases[turn - 1],
            "expected_outcome": expected_outcome,
        }
        if not older:
            meta["persona_archetype"] = persona.key
            meta["emotional_arc"] = arc.name
            meta["emotional_arc_key"] = arc.key
            meta["training_topic"] = topic.name
            meta["training_topic_key"] = topic.key
        if constant_score:
            score: float = base
        else:
            score = _clip(base + rng.choice((-0.2, -0.1, 0.0, 0.0, 0.1, 0.2)))
        score = _num(score)
        scores.append(score)
        criteria = {
            name: _num(_clip(score + rng.uniform(-0.3, 0.3)))
            for name in (
                "empathy_score",
                "clarity_score",
                "appropriateness_score",
                "brand_voice_alignment",
            )
        }
        is_reviewed = reviewed and rng.random() < review_share
        training_metadata: dict[str, Any] = {
            "difficulty_level": f"{arc.difficulty}_conversation_turn_{turn}",
            "key_learning_objective": objective,
            "demonstrates_skills": list(skills),
            "conversation_turn": turn,
            "emotional_progression_target": progression,
            "quality_score": score,
            "quality_criteria": criteria,
            "human_reviewed": is_reviewed,
            "reviewer_notes": rng.choice(_REVIEWER_NOTES) if is_reviewed else None,
            "use_as_seed_example": seed_example,
            "generate_variations_count": variations,
        }
        if extra_key is not None and extra_key[0] == "conversation_metadata":
            meta[extra_key[1]] = extra_key[2].format(rev=rev)
        if extra_key is not None and extra_key[0] == "training_metadata":
            training_metadata[extra_key[1]] = extra_key[2].format(rev=rev)
        pairs.append(
            {
                "id": f"{arc.prefix}_turn{turn}",
                "conversation_id": arc.prefix,
                "turn_number": turn,
                "conversation_metadata": meta,
                "system_prompt": system_prompt,
                "conversation_history": list(history),
                "current_user_input": user_input,
                "emotional_context": {
                    "detected_emotions": {
                        "primary": t["primary"],
                        "primary_confidence": t["primary_confidence"],
                        "secondary": t["secondary"],
                        "secondary_confidence": t["secondary_confidence"],
                        "intensity": t["intensity"],
                        "valence": t["valence"],
                    }
                },
                "target_response": t["content"] if t["role"] == "assistant" else None,
                "training_metadata": training_metadata,
            }
        )
        history.append(
            {
                "turn": turn,
                "role": t["role"],
                "content": t["content"],
                "emotional_state": {
                    "primary": t["primary"],
                    "secondary": t["secondary"],
                    "intensity": t["intensity"],
                },
            }
        )

    mean = sum(scores) / len(scores)
    source = rng.choices(
        ("synthetic_platform_generated", "synthetic_expert_authored", "real_anonymized"),
        weights=(85, 12, 3),
    )[0]
    dataset_metadata: dict[str, Any] = {
        "dataset_name": f"fp_conversation_{conv_uuid}",
        "version": "1.0.0",
        "created_date": created.isoformat(),
        "vertical": VERTICAL,
        "consultant_persona": CONSULTANT_PERSONA,
        "target_use": TARGET_USE,
        "conversation_source": source,
        "quality_tier": _tier(round(mean, 2)),
        "total_conversations": 1,
        "total_turns": n_turns,
        "notes": f"Generated via template: Template - {arc.name} - {topic.name}",
    }
    if extra_key is not None and extra_key[0] == "dataset_metadata":
        dataset_metadata[extra_key[1]] = extra_key[2].format(rev=rev)

    doc: dict[str, Any] = {
        "dataset_metadata": dataset_metadata,
        "consultant_profile": json.loads(json.dumps(CONSULTANT_PROFILE)),
        "training_pairs": pairs,
    }
    if with_input_parameters:
        doc["input_parameters"] = {
            "persona_id": _scaffold_id("persona", persona.key),
            "persona_key": persona.key,
            "persona_name": persona.name,
            "emotional_arc_id": _scaffold_id("emotional_arc", arc.key),
            "emotional_arc_key": arc.key,
            "emotional_arc_name": arc.name,
            "training_topic_id": _scaffold_id("training_topic", topic.key),
            "training_topic_key": topic.key,
            "training_topic_name": topic.name,
        }
    return doc


def write_demo_set(out_dir: Path, count: int, seed: int) -> list[Path]:
    """Write ``count`` synthetic enriched conversations to ``out_dir`` (created if needed) as
    ``fp_conversation_<uuid>.json`` and return their paths in generation order. The same seed
    always produces byte-identical files."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths: list[Path] = []
    for index in range(count):
        # One child generator per file: a file's content doesn't depend on text lengths of
        # the files before it, only on the seed and its index.
        child = random.Random(rng.getrandbits(64))
        doc = generate_conversation(child, index)
        path = out_dir / f"{doc['dataset_metadata']['dataset_name']}.json"
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    return paths
