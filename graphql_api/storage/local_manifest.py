"""The manifest of a composite object: what local storage keeps at an object's path when the
object is a concatenation of byte ranges of segment files rather than one plain file.

On disk, a composite object `dir/name` is two things side by side:

    dir/name                              the manifest, a small regular file
    dir/.name.<16 hex digits>~seg/        its segment directory (see local_names.py)
        s000000, s000001, ...             segment files: written for this object, or hard
                                          links to segment files of the objects it copied from

The manifest is the magic line, then one line of JSON, then a newline:

    \\0tf-local-composite v1\\n
    {"directory": ".name.0123456789abcdef~seg", "size": 1234,
     "segments": [["s000000", 0, 1000], ["s000001", 17, 251]]}\\n

`directory` is the segment directory beside the manifest; each segment is
`[file in that directory, start, end]`, the half-open byte range of that file that comes next;
`size` is the sum of their lengths (the object's size). No plain object starts with the magic:
local storage stores any data that does as a one-segment composite, so the first bytes of a
file tell which of the two it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import StorageError
from .local_names import is_segment_name, is_segments_name
from .manifest_lines import frame, is_range_entry, unframe

MAGIC = b"\0tf-local-composite v1\n"
# Far above any real manifest (a thousand segments take ~25 KB); a bigger file is not ours.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


class CorruptManifest(StorageError):
    """A file starts with the magic but is not a manifest this module wrote."""


@dataclass(frozen=True)
class Segment:
    name: str  # a file in the segment directory
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Manifest:
    directory: str
    segments: tuple[Segment, ...]

    @property
    def size(self) -> int:
        return sum(segment.length for segment in self.segments)


def encode(manifest: Manifest) -> bytes:
    body = {
        "directory": manifest.directory,
        "size": manifest.size,
        "segments": [[s.name, s.start, s.end] for s in manifest.segments],
    }
    return frame(MAGIC, body)


def decode(data: bytes, name: str) -> Manifest:
    """The manifest in `data` (which starts with the magic); `name` is used in errors."""
    body = unframe(MAGIC, data, name, CorruptManifest)
    manifest = _manifest(body, name)
    if body.get("size") != manifest.size:
        raise CorruptManifest(f"the composite manifest of {name} has the wrong size")
    return manifest


def _manifest(body: dict[str, Any], name: str) -> Manifest:
    directory = body.get("directory")
    segments = body.get("segments")
    # The names are checked so a tampered manifest cannot point outside its directory.
    if not isinstance(directory, str) or not is_segments_name(directory) or "/" in directory:
        raise CorruptManifest(f"the composite manifest of {name} names no segment directory")
    if not isinstance(segments, list):
        raise CorruptManifest(f"the composite manifest of {name} lists no segments")
    return Manifest(directory, tuple(_segment(item, name) for item in segments))


def _segment(item: Any, name: str) -> Segment:
    if is_range_entry(item) and is_segment_name(item[0]):
        return Segment(item[0], item[1], item[2])
    raise CorruptManifest(f"the composite manifest of {name} has a malformed segment")
