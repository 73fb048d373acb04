"""Reference rows: per-category accuracies reported by a publication, stored as facts."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.logs import get_logger
from app.models import MODEL_KINDS, PROTOCOLS, Model, ReferenceResult
from app.scoring.categories import ALL_CATEGORIES
from app.submissions.service import slugify

log = get_logger(__name__)

PAPER_RESULTS = Path(__file__).resolve().parent.parent / "seed" / "realunify-paper-v2-results.csv"
PAPER_NAME = "RealUnify paper (arXiv:2509.24897v2)"
# Each RealUnify category has 100 items (Shi et al., arXiv:2509.24897), which sets the
# denominators of the reported percentages.
ITEMS_PER_CATEGORY = 100
COLUMNS = ("model", "model_kind", "protocol", "task_type", "accuracy_percent", "source")


class ReferenceFileError(ValueError):
    pass


def read_reference_csv(path: Path) -> list[dict[str, str]]:
    """Read and check the CSV; raise ReferenceFileError naming the line and column."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ReferenceFileError(f"{path.name}: missing columns {', '.join(missing)}")
        rows = list(reader)
    seen: set[tuple[str, str, str]] = set()
    for line, row in enumerate(rows, start=2):
        where = f"{path.name} line {line}"
        if row["model_kind"] not in MODEL_KINDS:
            raise ReferenceFileError(f"{where}: model_kind {row['model_kind']!r} is unknown")
        if row["protocol"] not in PROTOCOLS:
            raise ReferenceFileError(f"{where}: protocol {row['protocol']!r} is unknown")
        if row["task_type"] not in ALL_CATEGORIES:
            raise ReferenceFileError(f"{where}: task_type {row['task_type']!r} is unknown")
        try:
            value = float(row["accuracy_percent"])
        except ValueError:
            raise ReferenceFileError(f"{where}: accuracy_percent is not a number") from None
        if not 0 <= value <= 100:
            raise ReferenceFileError(f"{where}: accuracy_percent {value} is outside 0-100")
        key = (row["model"], row["protocol"], row["task_type"])
        if key in seen:
            raise ReferenceFileError(f"{where}: {key} appears twice")
        seen.add(key)
    return rows


def load_reference_rows(session: Session, path: Path = PAPER_RESULTS) -> int:
    """Replace the stored reference results with the CSV's; return the number of models."""
    rows = read_reference_csv(path)
    by_model: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        by_model[row["model"]].append(row)

    for name, model_rows in by_model.items():
        sources = sorted({row["source"] for row in model_rows})
        model = session.scalar(select(Model).where(Model.slug == slugify(name)))
        if model is None:
            model = Model(name=name, slug=slugify(name), kind=model_rows[0]["model_kind"])
            session.add(model)
        elif not model.is_reference:
            log.warning("reference.name_taken", model=name, model_id=model.id)
            continue
        model.is_reference = True
        model.kind = model_rows[0]["model_kind"]
        model.source = "; ".join(sources)
        session.flush()
        session.execute(delete(ReferenceResult).where(ReferenceResult.model_id == model.id))
        session.add_all(
            ReferenceResult(
                model_id=model.id,
                protocol=row["protocol"],
                task_type=row["task_type"],
                accuracy_percent=float(row["accuracy_percent"]),
                item_count=ITEMS_PER_CATEGORY,
                source=row["source"],
            )
            for row in model_rows
        )
    session.flush()
    log.info("reference.loaded", models=len(by_model), rows=len(rows), file=path.name)
    return len(by_model)
