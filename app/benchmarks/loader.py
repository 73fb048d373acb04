"""Read a benchmark folder in the official RealUnify layout into validated items.

The folder contains UEG_direct, UEG_step, GEU_direct and GEU_step as ``.json`` or ``.jsonl`` files,
plus the GEU input images at the paths the items name. Reading imports nothing from the database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.benchmarks.layout import (
    FILE_KINDS,
    IMAGE_FIELDS,
    FileKind,
    content_key,
    describe_item,
    find_image_field,
    find_subtask,
)
from app.benchmarks.records import RecordsError, parse_records

YES_NO = ("yes", "no")


class BenchmarkLoadError(ValueError):
    """The folder is not a valid benchmark; ``problems`` lists every problem found."""

    def __init__(self, folder: Path, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n".join(f"  - {problem}" for problem in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{folder} is not a valid RealUnify benchmark folder:\n{shown}{more}")


@dataclass
class LoadedItem:
    axis: str
    protocol: str
    item_key: str
    position: int
    content_key: str
    task_type: str
    subtask: str | None
    public: dict[str, Any]
    private: dict[str, Any]


@dataclass
class LoadedFile:
    kind: FileKind
    path: Path
    file_format: str
    image_field: str | None
    keyed_by: str  # "index" or "content"
    items: list[LoadedItem] = field(default_factory=list)


@dataclass
class LoadedBenchmark:
    folder: Path
    version: str
    files: list[LoadedFile]
    warnings: list[str]

    @property
    def items(self) -> list[LoadedItem]:
        return [item for loaded in self.files for item in loaded.items]


def read_benchmark(folder: Path) -> LoadedBenchmark:
    """Read and validate every file of ``folder``; raise BenchmarkLoadError listing all problems."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise BenchmarkLoadError(folder, ["the path does not exist or is not a folder"])

    problems: list[str] = []
    warnings: list[str] = []
    files: list[LoadedFile] = []
    images: set[Path] = set()
    for kind in FILE_KINDS:
        path = _find_file(folder, kind, problems)
        if path is None:
            warnings.append(f"{kind.stem}.json(l) not found: no {kind.axis} {kind.protocol} items")
            continue
        loaded = _read_file(folder, kind, path, problems, images)
        if loaded is not None:
            files.append(loaded)

    if not files and not problems:
        expected = ", ".join(f"{kind.stem}.json" for kind in FILE_KINDS)
        problems.append(f"no benchmark files found; expected some of {expected}")
    if problems:
        raise BenchmarkLoadError(folder, problems)
    return LoadedBenchmark(folder, _content_hash(folder, files, images), files, warnings)


def _find_file(folder: Path, kind: FileKind, problems: list[str]) -> Path | None:
    candidates = [
        path
        for path in sorted(folder.iterdir())
        if path.is_file()
        and path.suffix.lower() in (".json", ".jsonl")
        and path.stem.lower() == kind.stem.lower()
    ]
    if len(candidates) > 1:
        names = ", ".join(path.name for path in candidates)
        problems.append(f"{names}: several files for {kind.stem}; keep exactly one")
        return None
    return candidates[0] if candidates else None


def _read_file(
    folder: Path, kind: FileKind, path: Path, problems: list[str], images: set[Path]
) -> LoadedFile | None:
    try:
        records, file_format = parse_records(path.read_bytes(), path.name)
    except RecordsError as error:
        problems.append(str(error))
        return None

    with_index = sum(1 for record in records if "index" in record)
    if 0 < with_index < len(records):
        problems.append(
            f"{path.name}: {with_index} of {len(records)} items have `index`; give every item an "
            "index or none"
        )
        return None
    keyed_by = "index" if with_index else "content"
    image_fields = {name for record in records if (name := find_image_field(record)) is not None}
    image_field = sorted(image_fields)[0] if len(image_fields) == 1 else None
    if kind.axis == "GEU" and len(image_fields) > 1:
        problems.append(f"{path.name}: items use several image fields {sorted(image_fields)}")

    loaded = LoadedFile(kind, path, file_format, image_field, keyed_by)
    seen_keys: dict[str, int] = {}
    for position, record in enumerate(records):
        item = _read_item(folder, kind, path.name, position, record, problems, images)
        if item is None:
            continue
        if keyed_by == "content":
            item.item_key = item.content_key
        earlier = seen_keys.setdefault(item.item_key, position)
        if earlier != position:
            what = f"index {item.item_key}" if keyed_by == "index" else "content"
            problems.append(
                f"{path.name}: entries {earlier + 1} and {position + 1} have the same {what}"
            )
            continue
        loaded.items.append(item)
    return loaded


def _read_item(
    folder: Path,
    kind: FileKind,
    filename: str,
    position: int,
    record: dict[str, Any],
    problems: list[str],
    images: set[Path],
) -> LoadedItem | None:
    index = record.get("index")
    if "index" in record and (isinstance(index, bool) or not isinstance(index, int | str)):
        problems.append(f"{filename}: entry {position + 1}: `index` must be an integer")
        return None
    key = str(index) if index is not None else None
    where = f"{filename}: {describe_item(key, position)}"
    count_before = len(problems)

    task_type = record.get("task_type")
    if not isinstance(task_type, str) or not task_type.strip():
        problems.append(f"{where}: `task_type` is missing or not a string")
    for name in kind.prompt_fields:
        if not isinstance(record.get(name), str) or not record[name].strip():
            problems.append(f"{where}: `{name}` is missing or not a non-empty string")

    public: dict[str, Any] = {name: record.get(name) for name in kind.prompt_fields}
    private: dict[str, Any] = {}
    if kind.axis == "UEG":
        private["question_list"] = _read_questions(record.get("question_list"), where, problems)
    else:
        answer = record.get("answer")
        if not isinstance(answer, str) or len(answer.strip()) != 1 or not answer.strip().isalpha():
            problems.append(f"{where}: `answer` must be a single option letter such as A")
        else:
            private["answer"] = answer.strip().upper()
        image_field = find_image_field(record)
        if image_field is None:
            fields = ", ".join(IMAGE_FIELDS)
            problems.append(f"{where}: no input image field (expected one of {fields})")
        else:
            value = record[image_field]
            public["image"] = _read_image_paths(folder, value, where, problems, images)
            public["image_field"] = image_field

    if len(problems) > count_before or not isinstance(task_type, str):
        return None
    if key is not None:
        public["index"] = index
    return LoadedItem(
        axis=kind.axis,
        protocol=kind.protocol,
        item_key=key or "",
        position=position,
        content_key=content_key(kind, record),
        task_type=task_type.strip(),
        subtask=find_subtask(record),
        public=public,
        private=private,
    )


def _read_questions(value: Any, where: str, problems: list[str]) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        # An empty list would let an item pass with no question asked.
        problems.append(f"{where}: `question_list` must be a non-empty list")
        return []
    questions = []
    for number, entry in enumerate(value):
        question = entry.get("question") if isinstance(entry, dict) else None
        answer = entry.get("answer") if isinstance(entry, dict) else None
        if not isinstance(question, str) or not question.strip():
            problems.append(f"{where}: question_list[{number}].question is missing")
            continue
        if not isinstance(answer, str) or answer.strip().lower() not in YES_NO:
            problems.append(f"{where}: question_list[{number}].answer must be yes or no")
            continue
        questions.append({"question": question.strip(), "answer": answer.strip().lower()})
    return questions


def _read_image_paths(
    folder: Path, value: Any, where: str, problems: list[str], images: set[Path]
) -> str | list[str]:
    paths = value if isinstance(value, list) else [value]
    for relative in paths:
        if not isinstance(relative, str) or not relative.strip():
            problems.append(f"{where}: the input image path must be a non-empty string")
            continue
        path = (folder / relative).resolve()
        if not path.is_relative_to(folder):
            problems.append(f"{where}: image path {relative!r} leaves the benchmark folder")
        elif not path.is_file():
            problems.append(f"{where}: image {relative!r} not found in the benchmark folder")
        else:
            images.add(path)
    return value  # type: ignore[no-any-return]


def _content_hash(folder: Path, files: list[LoadedFile], images: set[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted([loaded.path for loaded in files] + list(images)):
        digest.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
