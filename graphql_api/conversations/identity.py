"""A conversation's id: the uuid of `dataset_metadata.dataset_name` (`fp_conversation_<uuid>`),
else one derived from the file's content."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Final
from uuid import UUID

from ..domain.limits import DATASET_NAME_PREFIX
from .issues import Issues, Path, show

__all__ = [
    "CONVERSATION_ID_NAMESPACE",
    "canonical_json",
    "conversation_id_from",
    "derive_conversation_id",
    "resolve_conversation_id",
]

# Fixed forever: changing it would change the id of every file without a dataset_name.
# (uuid5(NAMESPACE_URL, "https://brightrun.ai/schemas/emotional-lora-individual-v4.0.json"))
CONVERSATION_ID_NAMESPACE: Final = UUID("b7c2a29c-9fb1-50fc-9618-ed8065a26e3a")

_UUID_RE: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_PATH: Final[Path] = ("dataset_metadata", "dataset_name")


def canonical_json(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def derive_conversation_id(document: Any) -> UUID:
    """uuid5(CONVERSATION_ID_NAMESPACE, canonical JSON): whitespace and key order don't matter."""
    # uuid5 spelled out so that a lone surrogate (a blocked file) cannot make it raise.
    data = canonical_json(document).encode("utf-8", "surrogatepass")
    digest = hashlib.sha1(CONVERSATION_ID_NAMESPACE.bytes + data).digest()
    return UUID(bytes=digest[:16], version=5)


def conversation_id_from(document: Mapping[str, Any]) -> UUID:
    """The dataset_name uuid, else an id derived from the parsed content.

    Raises ValueError for a `fp_conversation_` name whose suffix is not a uuid.
    """
    name = _dataset_name(document)
    found = _dataset_uuid(name) if isinstance(name, str) else None
    return found if found is not None else derive_conversation_id(document)


def resolve_conversation_id(
    document: Mapping[str, Any], issues: Issues
) -> tuple[UUID | None, str | None]:
    """(conversation_id, dataset_name), recording what is wrong with the name.

    dataset_name is only ever the canonical `fp_conversation_<uuid>`: nothing else from the
    file's name field is passed on (it could be anything, e.g. a path).
    """
    name = _dataset_name(document)
    if isinstance(name, str):
        try:
            found = _dataset_uuid(name)
        except ValueError as exc:
            detail = f"is {show(name)}: {exc}; expected {DATASET_NAME_PREFIX}<uuid>"
            issues.block("bad_dataset_name", _PATH, detail)
            return None, None
        if found is not None:
            if name != name.lower():
                detail = "has an upper-case uuid; the lower-case canonical form is used"
                issues.warn("non_canonical_dataset_name", _PATH, detail)
            return found, f"{DATASET_NAME_PREFIX}{found}"
        issues.warn("bad_dataset_name", _PATH, f"is {show(name)}, not {DATASET_NAME_PREFIX}<uuid>")
    derived = derive_conversation_id(document)
    detail = f"gives no {DATASET_NAME_PREFIX}<uuid>; the id {derived} was derived from the content"
    issues.warn("derived_conversation_id", _PATH, detail)
    return derived, None


def _dataset_name(document: Mapping[str, Any]) -> Any:
    metadata = document.get("dataset_metadata")
    return metadata.get("dataset_name") if isinstance(metadata, dict) else None


def _dataset_uuid(name: str) -> UUID | None:
    """The uuid of `fp_conversation_<uuid>`; None for other names; ValueError for a bad uuid."""
    if not name.startswith(DATASET_NAME_PREFIX):
        return None
    suffix = name[len(DATASET_NAME_PREFIX) :]
    if not _UUID_RE.fullmatch(suffix):
        raise ValueError(f"{show(suffix)} after {DATASET_NAME_PREFIX} is not a uuid")
    return UUID(suffix)
