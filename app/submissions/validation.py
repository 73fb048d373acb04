"""Check an uploaded prediction file against the benchmark before anything is stored.

Every problem is reported with the item and field it concerns. Fields in the upload that hold
answers or questions are ignored: scoring uses the server's copy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from app.benchmarks.layout import FILE_KINDS, FileKind, content_key, describe_item
from app.benchmarks.records import RecordsError, parse_records

MAX_LISTED_MISSING = 20


@dataclass(frozen=True)
class ItemRef:
    """The fields of a benchmark item that the validator reads."""

    id: int
    item_key: str
    content_key: str
    public: dict[str, Any]


@dataclass(frozen=True)
class Problem:
    message: str
    item: str | None = None
    field: str | None = None


@dataclass
class ValidationReport:
    axis: str
    protocol: str
    filename: str
    file_format: str | None = None
    matched_by: str | None = None
    upload_items: int = 0
    benchmark_items: int = 0
    matched_items: int = 0
    missing_items: list[str] = field(default_factory=list)
    # UEG: `generated_image` values with no matching uploaded image; those items score 0.
    missing_images: list[str] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    omitted_errors: int = 0

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["valid"] = self.valid
        body["missing_items"] = self.missing_items[:MAX_LISTED_MISSING]
        body["missing_count"] = len(self.missing_items)
        return body


@dataclass
class ValidatedUpload:
    report: ValidationReport
    # Benchmark item id to the submitter's fields for it.
    predictions: dict[int, dict[str, Any]] = field(default_factory=dict)


class _Collector:
    def __init__(self, report: ValidationReport, max_errors: int) -> None:
        self.report = report
        self.max_errors = max_errors

    def error(self, message: str, item: str | None = None, field: str | None = None) -> None:
        if len(self.report.errors) >= self.max_errors:
            self.report.omitted_errors += 1
            return
        self.report.errors.append(Problem(message, item, field))


def validate_upload(
    data: bytes,
    filename: str,
    kind: FileKind,
    items: list[ItemRef],
    *,
    allow_missing: bool = False,
    max_errors: int = 200,
) -> ValidatedUpload:
    """Parse ``data`` and match its items to ``items``, the benchmark's file of the same kind."""
    report = ValidationReport(kind.axis, kind.protocol, filename, benchmark_items=len(items))
    result = ValidatedUpload(report)
    collector = _Collector(report, max_errors)
    try:
        records, report.file_format = parse_records(data, filename)
    except RecordsError as error:
        collector.error(str(error), field="predictions")
        return result
    report.upload_items = len(records)
    if not records:
        collector.error("the file holds no items", field="predictions")
        return result

    by_key = {item.item_key: item for item in items}
    by_content = {item.content_key: item for item in items}
    keyed_by_index = any("index" in item.public for item in items)
    matched_at: dict[int, int] = {}
    ways: set[str] = set()

    for position, record in enumerate(records):
        item, way = _match(record, position, kind, by_key, by_content, keyed_by_index, collector)
        if item is None:
            continue
        ways.add(way)
        label = describe_item(item.item_key if keyed_by_index else None, position)
        earlier = matched_at.setdefault(item.id, position)
        if earlier != position:
            collector.error(
                f"duplicate item: entries {earlier + 1} and {position + 1} are the same "
                "benchmark item; keep one",
                item=label,
                field="index" if keyed_by_index else None,
            )
            continue
        _check_prompts(record, item, kind, label, collector)
        fields = _read_submitter_fields(record, kind, label, collector)
        if fields is not None:
            result.predictions[item.id] = fields

    report.matched_by = "+".join(sorted(ways)) or None
    report.matched_items = len(matched_at)
    _check_missing(items, matched_at, keyed_by_index, allow_missing, report, collector)
    _warn_missing_optional(upload_records=records, kind=kind, report=report)
    if report.matched_items == 0 and records:
        _hint_other_kind(records[0], kind, report)
    if report.errors:
        _hint_from_filename(filename, kind, report)
    if not report.valid:
        result.predictions.clear()
    return result


def _match(
    record: dict[str, Any],
    position: int,
    kind: FileKind,
    by_key: dict[str, ItemRef],
    by_content: dict[str, ItemRef],
    keyed_by_index: bool,
    collector: _Collector,
) -> tuple[ItemRef | None, str]:
    if keyed_by_index and "index" in record:
        index = record["index"]
        label = describe_item(str(index), position)
        if isinstance(index, bool) or not isinstance(index, int | str):
            collector.error("`index` must be an integer", item=label, field="index")
            return None, "index"
        item = by_key.get(str(index))
        if item is None:
            collector.error(
                f"unknown item: the benchmark's {kind.stem} file has no item with index {index}",
                item=label,
                field="index",
            )
        return item, "index"

    label = describe_item(None, position)
    item = by_content.get(content_key(kind, record))
    if item is None:
        fields = ", ".join(f"`{name}`" for name in (*kind.prompt_fields, "task_type"))
        collector.error(
            f"unknown item: no `index`, and its {fields}"
            f"{' and input image' if kind.axis == 'GEU' else ''} match no item of the "
            f"benchmark's {kind.stem} file; keep those fields unchanged or add `index`",
            item=label,
        )
    return item, "content"


def _check_prompts(
    record: dict[str, Any], item: ItemRef, kind: FileKind, label: str, collector: _Collector
) -> None:
    for other in FILE_KINDS:
        foreign = [name for name in other.prompt_fields if name not in kind.prompt_fields]
        if other.axis == kind.axis and other is not kind and any(n in record for n in foreign):
            collector.error(
                f"the item has `{foreign[0]}`, so it comes from the {other.stem} file; submit it "
                f"with protocol {other.protocol}, or upload the {kind.stem} file",
                item=label,
                field=foreign[0],
            )
            return
    for name in kind.prompt_fields:
        if name in record and record[name] != item.public.get(name):
            collector.error(
                f"`{name}` differs from the benchmark item with this index; upload the "
                f"{kind.stem} file with only the submitter fields "
                f"({', '.join(kind.submitter_fields)}) filled in",
                item=label,
                field=name,
            )


def _read_submitter_fields(
    record: dict[str, Any], kind: FileKind, label: str, collector: _Collector
) -> dict[str, Any] | None:
    fields: dict[str, Any] = {}
    ok = True
    if "response" in kind.submitter_fields:
        if "response" not in record:
            collector.error(
                'missing `response`; add the model\'s answer text (use "" when it gave none)',
                item=label,
                field="response",
            )
            ok = False
        else:
            response = record["response"]
            is_text = isinstance(response, str)
            is_list = isinstance(response, list) and bool(response) and isinstance(response[0], str)
            if not (is_text or is_list):
                collector.error(
                    f"`response` is {_json_type(response)}; it must be a string, or a list "
                    "whose first element is a string",
                    item=label,
                    field="response",
                )
                ok = False
            else:
                fields["response"] = response
    for name in kind.submitter_fields:
        if name == "response" or name not in record:
            continue
        value = record[name]
        if value is not None and not isinstance(value, str):
            collector.error(
                f"`{name}` is {_json_type(value)}; it must be a path string or null",
                item=label,
                field=name,
            )
            ok = False
        else:
            fields[name] = value
    return fields if ok else None


def _check_missing(
    items: list[ItemRef],
    matched_at: dict[int, int],
    keyed_by_index: bool,
    allow_missing: bool,
    report: ValidationReport,
    collector: _Collector,
) -> None:
    missing = [item for item in items if item.id not in matched_at]
    if not missing:
        return
    report.missing_items = [
        f"index {item.item_key}" if keyed_by_index else f"content {item.content_key[:12]}"
        for item in missing
    ]
    listed = ", ".join(report.missing_items[:MAX_LISTED_MISSING])
    more = len(missing) - MAX_LISTED_MISSING
    if more > 0:
        listed += f" and {more} more"
    if allow_missing:
        report.warnings.append(
            Problem(f"{len(missing)} benchmark items are missing and will score 0: {listed}")
        )
        return
    collector.error(
        f"{len(missing)} of {len(items)} benchmark items are missing: {listed}. Submit every "
        "item, or set allow_missing to score the missing ones as wrong",
        field="predictions",
    )


def _warn_missing_optional(
    upload_records: list[dict[str, Any]], kind: FileKind, report: ValidationReport
) -> None:
    for name in kind.submitter_fields:
        if name == "response":
            continue
        absent = sum(1 for record in upload_records if not record.get(name))
        if absent:
            report.warnings.append(
                Problem(
                    f"{absent} of {len(upload_records)} items have no `{name}`"
                    + ("; those items score 0" if name == "generated_image" else ""),
                    field=name,
                )
            )


def _hint_other_kind(record: dict[str, Any], kind: FileKind, report: ValidationReport) -> None:
    for other in FILE_KINDS:
        if other is kind:
            continue
        own = set(other.prompt_fields) - set(kind.prompt_fields)
        if own and all(name in record for name in own):
            report.errors.insert(
                0,
                Problem(
                    f"no item matched, and the items look like a {other.stem} file; set axis "
                    f"{other.axis} and protocol {other.protocol}, or upload the {kind.stem} file",
                    field="predictions",
                ),
            )
            return


def _hint_from_filename(filename: str, kind: FileKind, report: ValidationReport) -> None:
    """Point out a file name that names another benchmark file, a common cause of errors."""
    lowered = filename.lower()
    for other in FILE_KINDS:
        if other is not kind and other.stem.lower() in lowered:
            report.errors.insert(
                0,
                Problem(
                    f"the file name {filename!r} names {other.stem}, but the form says "
                    f"{kind.stem}; if that is the file, set axis {other.axis} and protocol "
                    f"{other.protocol}",
                    field="protocol",
                ),
            )
            return


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "a number", float: "a number", list: "an array"}
    if isinstance(value, list) and value:
        return f"an array whose first element is {_json_type(value[0])}"
    if isinstance(value, dict):
        return "an object"
    return names.get(type(value), "a string")
