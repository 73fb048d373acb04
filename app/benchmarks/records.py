"""Parse a JSON array or JSON Lines file of objects, with errors that point at the byte or line."""

from __future__ import annotations

import json
from typing import Any


class RecordsError(ValueError):
    """The file is not a JSON array of objects or JSON Lines of objects."""


def detect_format(filename: str, data: bytes) -> str:
    """Return ``"json"`` or ``"jsonl"``: from the extension, else from the first character."""
    lowered = filename.lower()
    if lowered.endswith(".jsonl"):
        return "jsonl"
    if lowered.endswith(".json"):
        return "json"
    return "json" if data.lstrip()[:1] == b"[" else "jsonl"


def decode_utf8(data: bytes, filename: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise RecordsError(
            f"{filename}: invalid UTF-8 at byte {error.start} (line {line}); save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


def parse_records(data: bytes, filename: str) -> tuple[list[dict[str, Any]], str]:
    """Parse ``data`` into a list of objects; return them with the format found."""
    file_format = detect_format(filename, data)
    text = decode_utf8(data, filename)
    if not text.strip():
        raise RecordsError(f"{filename}: the file is empty; expected a JSON array of items")

    if file_format == "json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            raise RecordsError(
                f"{filename}: invalid JSON at line {error.lineno}, column {error.colno} "
                f"({error.msg})"
            ) from None
        if not isinstance(value, list):
            raise RecordsError(
                f"{filename}: the top level is a JSON {_json_type(value)}; expected an array "
                "of item objects"
            )
        records = value
        where = "entry"
    else:
        records = []
        for line_number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise RecordsError(
                    f"{filename}: invalid JSON on line {line_number}, column {error.colno} "
                    f"({error.msg}); each line of a JSON Lines file must be one item object"
                ) from None
        where = "item"

    for position, record in enumerate(records):
        if not isinstance(record, dict):
            raise RecordsError(
                f"{filename}: {where} {position + 1} is a JSON {_json_type(record)}; every "
                "item must be an object"
            )
    return records, file_format


def _json_type(value: Any) -> str:
    names = {
        list: "array",
        dict: "object",
        str: "string",
        int: "number",
        float: "number",
        bool: "boolean",
    }
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)
