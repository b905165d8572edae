"""The manifest of an S3 composite object, and the names of its segment objects.

A composite object is an ordered list of byte ranges of *segment objects*: plain objects that
are written once and never changed, so later composites can name them again. At the object's
key is a small manifest object, marked by its metadata (HeadObject and GetObject carry it, so
no read tells a composite from a plain object by its bytes):

    x-amz-meta-tf-composite: v1
    x-amz-meta-tf-size: <the object's size: the sum of its ranges' lengths>

and whose body is the magic line, then one line of JSON, then a newline:

    \\0tf-s3-composite v1\\n
    {"size": 1234, "segments": [["<dir>/.segments/<name>.<16 hex>", 0, 1000], ...]}\\n

Keys are logical (without the configured prefix) and in the manifest's own bucket. A segment
is born beside the object it was written for, under `.segments/`; `is_segment_key` tells the
checker which listed keys are segments.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import StorageError, validate_key
from .manifest_lines import frame, is_range_entry, unframe

MAGIC = b"\0tf-s3-composite v1\n"
COMPOSITE_METADATA = "tf-composite"
SIZE_METADATA = "tf-size"
VERSION = "v1"
SEGMENTS_DIRECTORY = ".segments"
# Far above any real manifest (a thousand segments take ~100 KB); a bigger one is not ours.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024

_SEGMENT_NAME = re.compile(r"^[^/]+\.[0-9a-f]{16}$")


class CorruptManifest(StorageError):
    """An object marked as a composite whose body is not a manifest this module wrote."""


@dataclass(frozen=True)
class Segment:
    """Bytes `[start, end)` of the segment object `key`."""

    key: str
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Manifest:
    segments: tuple[Segment, ...]

    @property
    def size(self) -> int:
        return sum(segment.length for segment in self.segments)

    def covering(self, start: int, end: int) -> list[Segment]:
        """The pieces of segments that hold bytes `[start, end)` of the object, in order."""
        pieces, offset = [], 0
        for segment in self.segments:
            low, high = max(start, offset), min(end, offset + segment.length)
            if low < high:
                skew = segment.start - offset
                pieces.append(Segment(segment.key, low + skew, high + skew))
            offset += segment.length
            if offset >= end:
                break
        return pieces


def segment_key(target: str) -> str:
    """A fresh key for a segment written for the object `target`."""
    return _segment_prefix(target) + secrets.token_hex(8)


def born_for(segment: str, target: str) -> bool:
    """Whether `segment` was written for the object `target` (by `segment_key`)."""
    return segment.startswith(_segment_prefix(target))


def _segment_prefix(target: str) -> str:
    directory, slash, name = target.rpartition("/")
    return f"{directory}{slash}{SEGMENTS_DIRECTORY}/{name[:100]}."


def is_segment_key(key: str) -> bool:
    directory, _, name = key.rpartition("/")
    last = directory.rpartition("/")[2]
    return last == SEGMENTS_DIRECTORY and _SEGMENT_NAME.match(name) is not None


def metadata(manifest: Manifest) -> dict[str, str]:
    return {COMPOSITE_METADATA: VERSION, SIZE_METADATA: str(manifest.size)}


def is_composite(response: Mapping[str, Any]) -> bool:
    """Whether a HeadObject or GetObject answer is a composite's manifest."""
    return bool(response.get("Metadata", {}).get(COMPOSITE_METADATA))


def composite_size(response: Mapping[str, Any], name: str) -> int:
    """The size of the composite whose manifest's HeadObject or GetObject answer this is."""
    found = response.get("Metadata", {})
    if found.get(COMPOSITE_METADATA) != VERSION or not str(found.get(SIZE_METADATA)).isdigit():
        raise CorruptManifest(f"{name} is marked as a composite this version cannot read")
    return int(found[SIZE_METADATA])


def encode(manifest: Manifest) -> bytes:
    body = {
        "size": manifest.size,
        "segments": [[s.key, s.start, s.end] for s in manifest.segments],
    }
    return frame(MAGIC, body)


def decode(data: bytes, name: str) -> Manifest:
    """The manifest in `data`; `name` is used in errors."""
    body = unframe(MAGIC, data, name, CorruptManifest)
    segments = body.get("segments")
    if not isinstance(segments, list):
        raise CorruptManifest(f"the composite manifest of {name} lists no segments")
    manifest = Manifest(tuple(_segment(item, name) for item in segments))
    if body.get("size") != manifest.size:
        raise CorruptManifest(f"the composite manifest of {name} has the wrong size")
    return manifest


def _segment(item: Any, name: str) -> Segment:
    # The keys are checked so a tampered manifest cannot name anything but a segment.
    if is_range_entry(item) and is_segment_key(item[0]):
        with contextlib.suppress(StorageError):
            return Segment(validate_key(item[0]), item[1], item[2])
    raise CorruptManifest(f"the composite manifest of {name} has a malformed segment")
