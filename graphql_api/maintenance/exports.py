"""What a line of a trainer export (aggregation/exports.py) must look like, for the checker.

OPENAI_CHAT: `{"messages": [...]}` alone, the messages as OpenAI chat fine-tuning wants them
(an optional system message first, then user and assistant alternating from the user's, the
last the assistant's, every content a non-blank string). HF_DATASET: the record's keys in
order, and the same messages.
"""

from __future__ import annotations

from typing import Any

from ..aggregation.exports import HF_COLUMNS
from ..domain.enums import FileFormat


def line_problem(kind: FileFormat, line: dict[str, Any]) -> str | None:
    """Why `line` is not a line of export `kind`, or None."""
    if kind is FileFormat.OPENAI_CHAT and list(line) != ["messages"]:
        return f"has keys {sorted(line)}, not only 'messages'"
    if kind is FileFormat.HF_DATASET and tuple(line) != HF_COLUMNS:
        return "does not have the HF_DATASET record's keys in their order"
    return messages_problem(line.get("messages"))


def messages_problem(messages: object) -> str | None:
    """Why `messages` breaks the chat fine-tuning rules, or None."""
    if not isinstance(messages, list) or not messages:
        return "has no list of messages"
    roles = []
    for number, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            return f"message {number} is not exactly a role and a content"
        content = message["content"]
        if not isinstance(content, str) or not content.strip():
            return f"message {number} has no text"
        roles.append(message["role"])
    turns = roles[1:] if roles[0] == "system" else roles
    expected = ["user" if i % 2 == 0 else "assistant" for i in range(len(turns))]
    if not turns or turns != expected or turns[-1] != "assistant":
        return f"roles {roles} do not alternate user, assistant from a user to an assistant"
    return None
