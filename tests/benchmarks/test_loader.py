"""Loading a benchmark folder: content hash, idempotence and the problems reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.benchmarks.loader import BenchmarkLoadError, read_benchmark
from app.benchmarks.service import load_benchmark
from app.config import get_settings
from app.models import Benchmark, BenchmarkItem

DEMO = Path(get_settings().demo_benchmark_path)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    copy = tmp_path / "bench"
    shutil.copytree(DEMO, copy)
    return copy


def edit(folder: Path, stem: str, change) -> None:  # type: ignore[no-untyped-def]
    path = folder / f"{stem}.json"
    items = json.loads(path.read_text(encoding="utf-8"))
    change(items)
    path.write_text(json.dumps(items), encoding="utf-8")


def test_demo_has_all_files_and_categories() -> None:
    loaded = read_benchmark(DEMO)

    assert {file.kind.stem for file in loaded.files} == {
        "UEG_direct",
        "UEG_step",
        "GEU_direct",
        "GEU_step",
    }
    assert loaded.warnings == []
    for file in loaded.files:
        assert file.keyed_by == "index"
        counts: dict[str, int] = {}
        for item in file.items:
            counts[item.task_type] = counts.get(item.task_type, 0) + 1
        assert len(counts) == (6 if file.kind.axis == "UEG" else 4)
        assert min(counts.values()) >= 4
    assert next(f for f in loaded.files if f.kind.stem == "GEU_direct").image_field == "image"


def test_hash_is_stable_and_tracks_content(folder: Path) -> None:
    first = read_benchmark(folder).version
    assert read_benchmark(folder).version == first

    edit(
        folder,
        "GEU_direct",
        lambda items: items[0].update(answer="D" if items[0]["answer"] != "D" else "C"),
    )

    assert read_benchmark(folder).version != first


def test_image_bytes_change_the_hash(folder: Path) -> None:
    first = read_benchmark(folder).version
    image = next((folder / "images").iterdir())
    image.write_bytes(image.read_bytes() + b"\0")

    assert read_benchmark(folder).version != first


def test_loading_twice_stores_once(db_session: Session, folder: Path) -> None:
    before = db_session.scalar(select(func.count()).select_from(BenchmarkItem))

    first, created_first = load_benchmark(db_session, folder, "copy-test")
    second, created_second = load_benchmark(db_session, folder, "copy-test")

    assert created_first is True
    assert created_second is False
    assert first.id == second.id
    added = db_session.scalar(select(func.count()).select_from(BenchmarkItem)) - before
    assert added == len(read_benchmark(folder).items)


def test_new_version_becomes_current(db_session: Session, folder: Path) -> None:
    old, _ = load_benchmark(db_session, folder, "versions-test")
    edit(folder, "GEU_direct", lambda items: items.pop())

    new, created = load_benchmark(db_session, folder, "versions-test")

    assert created
    current = db_session.scalars(
        select(Benchmark).where(Benchmark.name == "versions-test", Benchmark.is_current.is_(True))
    ).all()
    assert [b.id for b in current] == [new.id]
    assert old.id != new.id


@pytest.mark.parametrize(
    ("stem", "change", "expected"),
    [
        (
            "GEU_direct",
            lambda items: items[1].pop("answer"),
            "`answer` must be a single option letter",
        ),
        (
            "GEU_direct",
            lambda items: items[2].update(index=items[0]["index"]),
            "have the same index",
        ),
        (
            "GEU_direct",
            lambda items: items[0].update(image="images/nope.png"),
            "'images/nope.png' not found",
        ),
        (
            "GEU_direct",
            lambda items: items[0].update(image="../../etc/passwd"),
            "leaves the benchmark folder",
        ),
        ("GEU_direct", lambda items: items[0].pop("image"), "no input image field"),
        (
            "UEG_direct",
            lambda items: items[0].update(question_list=[]),
            "`question_list` must be a non-empty list",
        ),
        (
            "UEG_direct",
            lambda items: items[0]["question_list"][0].update(answer="maybe"),
            "answer must be yes or no",
        ),
        ("UEG_step", lambda items: items[0].pop("new_prompt"), "`new_prompt` is missing"),
        ("UEG_step", lambda items: items[3].pop("index"), "give every item an index or none"),
    ],
    ids=[
        "no-answer",
        "duplicate-index",
        "missing-image",
        "image-escapes",
        "no-image-field",
        "empty-questions",
        "bad-question-answer",
        "no-new-prompt",
        "mixed-index",
    ],
)
def test_invalid_folder_names_the_problem(folder: Path, stem: str, change, expected: str) -> None:  # type: ignore[no-untyped-def]
    edit(folder, stem, change)

    with pytest.raises(BenchmarkLoadError) as raised:
        read_benchmark(folder)

    assert any(expected in problem for problem in raised.value.problems), raised.value.problems
    assert any(stem in problem for problem in raised.value.problems)


def test_invalid_json_file_is_reported(folder: Path) -> None:
    (folder / "GEU_step.json").write_text('[{"index": 0,', encoding="utf-8")

    with pytest.raises(BenchmarkLoadError) as raised:
        read_benchmark(folder)

    assert "GEU_step.json: invalid JSON at line 1" in raised.value.problems[0]


def test_jsonl_files_load_like_json(folder: Path) -> None:
    expected = read_benchmark(folder)
    for stem in ("GEU_direct", "UEG_step"):
        items = json.loads((folder / f"{stem}.json").read_text(encoding="utf-8"))
        (folder / f"{stem}.json").unlink()
        (folder / f"{stem}.jsonl").write_text(
            "\n".join(json.dumps(i) for i in items), encoding="utf-8"
        )

    loaded = read_benchmark(folder)

    assert [i.private for i in loaded.items] == [i.private for i in expected.items]
    assert {f.kind.stem: f.file_format for f in loaded.files}["GEU_direct"] == "jsonl"


def test_missing_file_is_a_warning(folder: Path) -> None:
    (folder / "UEG_step.json").unlink()

    loaded = read_benchmark(folder)

    assert any("UEG_step" in warning for warning in loaded.warnings)


def test_empty_folder_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkLoadError, match="no benchmark files found"):
        read_benchmark(tmp_path)


def test_cli_load_reports_already_loaded(committed: None) -> None:
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "app.cli", "benchmark", "load", str(DEMO), "--demo"]
    result = subprocess.run(
        command, capture_output=True, text=True, env=os.environ.copy(), check=True
    )

    assert "already loaded" in result.stdout


def test_demo_seed_keeps_loaded_benchmark(committed: None, tmp_path: Path) -> None:
    from app.benchmarks.service import get_current_benchmark
    from app.db import session_scope
    from app.demo_seed import seed_demo

    folder = tmp_path / "official"
    shutil.copytree(DEMO, folder)
    edit(folder, "GEU_direct", lambda items: items.pop())
    settings = get_settings()
    try:
        with session_scope() as session:
            official, _ = load_benchmark(session, folder, settings.benchmark_name)
            official_id = official.id

        lines = list(seed_demo(settings))

        assert any("the demo is left out" in line for line in lines)
        with session_scope() as session:
            assert get_current_benchmark(session, settings.benchmark_name).id == official_id
    finally:
        with session_scope() as session:
            load_benchmark(session, DEMO, settings.benchmark_name, is_demo=True)
