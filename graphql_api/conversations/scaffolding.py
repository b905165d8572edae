"""A conversation's scaffolding (persona, emotional arc, training topic) and its title.

Each key and name comes from the file's `input_parameters`, else the first pair's
`conversation_metadata`; old-style files name only an archetype in `client_persona`
("David Chen - The Pragmatic Optimist"), from which the persona is derived when the archetype
is a v4 one, so that these conversations count in a training file's persona distribution.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..domain.vocabulary import VOCABULARY, Persona
from .issues import Issues, Path, show

__all__ = ["Scaffolding", "resolve_scaffolding", "title"]

_TEMPLATE_RE: Final = re.compile(r"\s*generated via template:\s*(.*?)\s*", re.I | re.S)
_CLIENT_PERSONA: Final[Path] = ("training_pairs", 0, "conversation_metadata", "client_persona")


@dataclass(frozen=True)
class Scaffolding:
    persona_key: str | None = None
    persona_name: str | None = None
    emotional_arc_key: str | None = None
    emotional_arc_name: str | None = None
    training_topic_key: str | None = None
    training_topic_name: str | None = None


def _text(*candidates: Any) -> str | None:
    """The first candidate that is a non-blank string, stripped."""
    for value in candidates:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first_pair_metadata(document: Mapping[str, Any]) -> dict[str, Any]:
    pairs = document.get("training_pairs")
    first = pairs[0] if isinstance(pairs, list) and pairs else None
    return _as_dict(_as_dict(first).get("conversation_metadata"))


def _client_persona(value: Any) -> tuple[str | None, Persona | None]:
    """(client name, v4 persona of the archetype) of "David Chen - The Pragmatic Optimist"."""
    text = _text(value)
    if text is None:
        return None, None
    name, _, archetype = (part.strip() for part in text.partition(" - "))
    if not archetype and VOCABULARY.persona_for_archetype(name):
        name, archetype = "", name
    persona = VOCABULARY.persona_for_archetype(archetype) if archetype else None
    return name or None, persona


def resolve_scaffolding(document: Mapping[str, Any], issues: Issues) -> Scaffolding:
    params = _as_dict(document.get("input_parameters"))
    first = _first_pair_metadata(document)
    client_name, archetype = _client_persona(first.get("client_persona"))
    persona_key = _text(params.get("persona_key"), first.get("persona_archetype"))
    derived = archetype if persona_key is None else None
    if derived is not None:
        persona_key = derived.key
        detail = (
            f"names the archetype {show(derived.archetype)}; the persona key "
            f"{show(derived.key)} was derived from it (the file has no v4 persona key)"
        )
        issues.warn("derived_persona_key", _CLIENT_PERSONA, detail)
    return Scaffolding(
        persona_key=persona_key,
        persona_name=_text(
            params.get("persona_name"), client_name, derived.name if derived else None
        ),
        emotional_arc_key=_text(params.get("emotional_arc_key"), first.get("emotional_arc_key")),
        emotional_arc_name=_text(params.get("emotional_arc_name"), first.get("emotional_arc")),
        training_topic_key=_text(params.get("training_topic_key"), first.get("training_topic_key")),
        training_topic_name=_text(params.get("training_topic_name"), first.get("training_topic")),
    )


def title(document: Mapping[str, Any], scaffolding: Scaffolding) -> str | None:
    """The template named in `dataset_metadata.notes`, else "<persona> - <topic>"."""
    notes = _as_dict(document.get("dataset_metadata")).get("notes")
    match = _TEMPLATE_RE.fullmatch(notes) if isinstance(notes, str) else None
    if match and match.group(1):
        return match.group(1)
    parts = [p for p in (scaffolding.persona_name, scaffolding.training_topic_name) if p]
    return " - ".join(parts) or None
