"""Store loaded benchmarks and look up the current one."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.benchmarks.loader import LoadedBenchmark, read_benchmark
from app.errors import NotFound
from app.logs import get_logger
from app.models import Benchmark, BenchmarkItem

log = get_logger(__name__)


def load_benchmark(
    session: Session, folder: Path, name: str, *, is_demo: bool = False
) -> tuple[Benchmark, bool]:
    """Load ``folder`` as the current version of benchmark ``name``.

    Returns the benchmark and whether it was newly stored. Loading the same content again stores
    nothing and only makes that version current.
    """
    loaded = read_benchmark(folder)
    existing = session.scalar(
        select(Benchmark).where(Benchmark.name == name, Benchmark.version == loaded.version)
    )
    if existing is not None:
        _make_current(session, existing)
        log.info("benchmark.already_loaded", benchmark_id=existing.id, version=loaded.version)
        return existing, False

    benchmark = Benchmark(
        name=name,
        version=loaded.version,
        source_path=str(loaded.folder),
        is_demo=is_demo,
        files=_describe_files(loaded),
    )
    session.add(benchmark)
    session.flush()
    session.add_all(
        BenchmarkItem(
            benchmark_id=benchmark.id,
            axis=item.axis,
            protocol=item.protocol,
            item_key=item.item_key,
            position=item.position,
            content_key=item.content_key,
            task_type=item.task_type,
            subtask=item.subtask,
            public=item.public,
            private=item.private,
        )
        for item in loaded.items
    )
    _make_current(session, benchmark)
    session.flush()
    log.info(
        "benchmark.loaded",
        benchmark_id=benchmark.id,
        version=loaded.version,
        items=len(loaded.items),
        folder=str(loaded.folder),
    )
    return benchmark, True


def _describe_files(loaded: LoadedBenchmark) -> dict[str, object]:
    return {
        file.kind.stem: {
            "axis": file.kind.axis,
            "protocol": file.kind.protocol,
            "file": file.path.name,
            "format": file.file_format,
            "items": len(file.items),
            "keyed_by": file.keyed_by,
            "image_field": file.image_field,
        }
        for file in loaded.files
    }


def _make_current(session: Session, benchmark: Benchmark) -> None:
    session.execute(
        update(Benchmark)
        .where(Benchmark.name == benchmark.name, Benchmark.id != benchmark.id)
        .values(is_current=False)
    )
    benchmark.is_current = True


def get_current_benchmark(session: Session, name: str) -> Benchmark:
    benchmark = session.scalar(
        select(Benchmark).where(Benchmark.name == name, Benchmark.is_current.is_(True))
    )
    if benchmark is None:
        raise NotFound(
            f"no benchmark named {name!r} is loaded; run: realunify-board benchmark load PATH"
        )
    return benchmark


def category_counts(
    session: Session, benchmark_id: int, axis: str, protocol: str
) -> dict[str, int]:
    """Count the benchmark's items per task_type for one file: the accuracy denominators."""
    rows = session.execute(
        select(BenchmarkItem.task_type, BenchmarkItem.id).where(
            BenchmarkItem.benchmark_id == benchmark_id,
            BenchmarkItem.axis == axis,
            BenchmarkItem.protocol == protocol,
        )
    ).all()
    counts: dict[str, int] = {}
    for task_type, _ in rows:
        counts[task_type] = counts.get(task_type, 0) + 1
    return counts
