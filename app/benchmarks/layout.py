"""Facts about the RealUnify file layout shared by the loader and the upload validator."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

# The input-image field's name is not fixed by a published schema, so these are all accepted and
# the one found is recorded.
IMAGE_FIELDS = ("image", "input_image", "image_path")
SUBTASK_FIELDS = ("subtask", "sub_task", "subtask_type", "sub_task_type")


@dataclass(frozen=True)
class FileKind:
    """One of the four benchmark files, e.g. ``GEU_direct``."""

    axis: str
    protocol: str
    stem: str
    # Fields the model is given, which identify an item when the file has no `index`.
    prompt_fields: tuple[str, ...]
    # Fields the submitter adds.
    submitter_fields: tuple[str, ...]


FILE_KINDS = (
    FileKind("UEG", "direct", "UEG_direct", ("prompt",), ("generated_image",)),
    FileKind("UEG", "stepwise", "UEG_step", ("new_prompt",), ("response", "generated_image")),
    FileKind("GEU", "direct", "GEU_direct", ("evaluation_prompt",), ("response",)),
    FileKind(
        "GEU",
        "stepwise",
        "GEU_step",
        ("edit_prompt", "evaluation_prompt"),
        ("edit_image", "response"),
    ),
)


def file_kind(axis: str, protocol: str) -> FileKind:
    for kind in FILE_KINDS:
        if kind.axis == axis and kind.protocol == protocol:
            return kind
    raise ValueError(f"unknown file kind: axis={axis!r} protocol={protocol!r}")


def find_image_field(item: dict[str, Any]) -> str | None:
    for field in IMAGE_FIELDS:
        if field in item:
            return field
    return None


def find_subtask(item: dict[str, Any]) -> str | None:
    for field in SUBTASK_FIELDS:
        value = item.get(field)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def content_key(kind: FileKind, item: dict[str, Any]) -> str:
    """Hash the fields a model is given, so an upload without `index` can be matched by content."""
    identity: dict[str, Any] = {field: item.get(field) for field in kind.prompt_fields}
    identity["task_type"] = item.get("task_type")
    if kind.axis == "GEU":
        image_field = find_image_field(item)
        identity["image"] = item.get(image_field) if image_field else None
    canonical = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def describe_item(key: str | None, position: int) -> str:
    """Name an item in messages: by its `index` when it has one, else by its place in the file."""
    if key is not None:
        return f"item index {key} (entry {position + 1} in the file)"
    return f"entry {position + 1} in the file"
