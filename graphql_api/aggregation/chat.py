"""A training pair as chat messages, the shape OpenAI chat fine-tuning and TRL's SFTTrainer take.

Pure. The messages of a pair with a target response are

    [system: system_prompt]  (left out when the prompt is blank)
    history turns as user / assistant messages
    [user: current_user_input]  (left out when the history already ends with it)
    assistant: target_response

so that the roles alternate user, assistant, ..., user, assistant after the system message:

- `conversation_history` of an enriched file already ends with the current user turn (every
  real file does): that turn is not repeated. A history ending with another user turn gets the
  current input joined to it.
- History roles are named `user`/`assistant` in v4 files; `client`/`human` are read as user and
  `consultant`/`advisor` as assistant (case and surrounding spaces ignored). Entries with any
  other role (`system` included), or without text, are left out.
- Consecutive turns of one role are joined into one message, separated by a blank line.
- Leading assistant turns are left out: chat templates want the user to speak first.
- No message has blank content. A pair that cannot make such a conversation (a blank target
  response, no user text at all) has no messages: it is in neither trainer export.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeGuard

USER: Final = "user"
ASSISTANT: Final = "assistant"
SYSTEM: Final = "system"

_ROLES: Final = {
    "user": USER,
    "client": USER,
    "human": USER,
    "assistant": ASSISTANT,
    "consultant": ASSISTANT,
    "advisor": ASSISTANT,
}
_JOINER: Final = "\n\n"

Message = dict[str, str]


def messages(pair: Mapping[str, Any]) -> list[Message] | None:
    """The pair's chat messages, or None when it has no valid conversation (see above)."""
    target = pair.get("target_response")
    if not _has_text(target):
        return None
    turns = _turns(pair.get("conversation_history"))
    current = pair.get("current_user_input")
    if _has_text(current):
        _add_current(turns, current)
    while turns and turns[0]["role"] != USER:
        turns.pop(0)
    if not turns:
        return None
    turns.append({"role": ASSISTANT, "content": target})
    system = pair.get("system_prompt")
    return ([{"role": SYSTEM, "content": system}] if _has_text(system) else []) + turns


def _has_text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.strip() != ""


def _turns(history: object) -> list[Message]:
    turns: list[Message] = []
    for entry in history if isinstance(history, list) else ():
        if not isinstance(entry, Mapping):
            continue
        raw_role, content = entry.get("role"), entry.get("content")
        role = _ROLES.get(raw_role.strip().lower()) if isinstance(raw_role, str) else None
        if role is None or not _has_text(content):
            continue
        _append(turns, role, content)
    return turns


def _add_current(turns: list[Message], current: str) -> None:
    if turns and turns[-1]["role"] == USER:
        last = turns[-1]["content"]
        if last == current or last.endswith(_JOINER + current):
            return
    _append(turns, USER, current)


def _append(turns: list[Message], role: str, content: str) -> None:
    if turns and turns[-1]["role"] == role:
        turns[-1] = {"role": role, "content": turns[-1]["content"] + _JOINER + content}
    else:
        turns.append({"role": role, "content": content})
