"""The leaderboard's pages in Chromium, as a visitor uses them: look, filter, sort, open, export.

Each test saves a full-page screenshot of what it checked to docs/screenshots/NAME.png.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from app.scoring.categories import CATEGORIES_BY_AXIS
from tests.browser.conftest import DEMO_MODELS, LOCAL_HOST, DemoModel, Traffic
from tests.builders import demo_file

pytestmark = pytest.mark.browser

UNDEFINED = "–"
PERCENT_INTERVAL = re.compile(r"^(\d+\.\d)–(\d+\.\d)$")
SIGNED = re.compile(r"^[+-]\d+\.\d$")
SIGNED_INTERVAL = re.compile(r"^([+-]\d+\.\d) to ([+-]\d+\.\d)$")
P_VALUE = re.compile(r"^(< 0\.001|[01]\.\d{3})$")
DEMO_SLUGS = {model.slug for model in DEMO_MODELS}

# The board's rows as the page shows them. With both axes shown, the cells with class "strong"
# are the UEG score, the GEU score and the total, in this order.
# A cell's first text node is its value. An interval or a judge note may follow in child elements.
ROWS_SCRIPT = """
rows => rows.map((row) => {
  const value = (cell) => (cell.childNodes[0]?.textContent ?? "").trim();
  const model = row.querySelector("td.model");
  return {
    position: row.cells[0].textContent.trim(),
    slug: row.dataset.model,
    protocol: row.dataset.protocol,
    name: model.querySelector("a").textContent.trim(),
    kind: model.querySelector("span.kind").textContent.trim(),
    reference: row.classList.contains("reference"),
    badge: model.querySelector("span.badge")?.textContent.trim() ?? null,
    strong: [...row.querySelectorAll("td.num.strong")].map(value),
  };
})
"""

# Whether Chart.js drew on a canvas: its chart object, and how many pixels are not blank.
CHART_SCRIPT = """
(canvas) => {
  const chart = Chart.getChart(canvas);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted += 1;
  return {
    type: chart ? chart.config.type : null,
    datasets: chart ? chart.data.datasets.map((d) => ({label: d.label, data: d.data})) : [],
    painted: painted,
  };
}
"""


@dataclass(frozen=True)
class BoardRow:
    position: str
    slug: str
    protocol: str
    name: str
    kind: str
    reference: bool
    badge: str | None
    ueg: str
    geu: str
    total: str


def board_rows(page: Page) -> list[BoardRow]:
    """Read the leaderboard table's rows, top to bottom, when both axes are shown."""
    records: list[dict[str, Any]] = page.locator(
        "#leaderboard tbody tr[data-model][data-protocol]"
    ).evaluate_all(ROWS_SCRIPT)
    rows = []
    for record in records:
        ueg, geu, total = record.pop("strong")
        rows.append(BoardRow(**record, ueg=ueg, geu=geu, total=total))
    return rows


def shoot(page: Page, screenshot_dir: Path, name: str) -> None:
    # Submission times differ on every run; masking them keeps the committed screenshots stable.
    times = page.locator("a[href^='/submissions/']")
    page.screenshot(
        path=str(screenshot_dir / f"{name}.png"),
        full_page=True,
        mask=[times],
        animations="disabled",
    )


def chart_state(page: Page, selector: str) -> dict[str, Any]:
    page.wait_for_function(
        "(selector) => typeof Chart !== 'undefined'"
        " && Chart.getChart(document.querySelector(selector)) !== undefined",
        arg=selector,
    )
    state: dict[str, Any] = page.locator(selector).evaluate(CHART_SCRIPT)
    return state


def number(text: str) -> float:
    return float(text.replace("+", ""))


def expected_geu(model: DemoModel, protocol: str) -> dict[str, float]:
    """Compute a demo model's accuracy per category, given that its first responses are wrong."""
    stem = "GEU_direct" if protocol == "direct" else "GEU_step"
    wrong = model.wrong_direct if protocol == "direct" else model.wrong_stepwise
    items = demo_file(stem)
    totals = Counter(item["task_type"] for item in items)
    misses = Counter(item["task_type"] for item in items[:wrong])
    return {key: 100 * (totals[key] - misses[key]) / totals[key] for key in totals}


def test_leaderboard_rows_and_chart(page: Page, traffic: Traffic, screenshot_dir: Path) -> None:
    """The rows, the drawn chart and its table, and no request beyond 127.0.0.1."""
    page.goto("/")
    page.wait_for_load_state("networkidle")

    rows = board_rows(page)
    reference = [row for row in rows if row.reference]
    assert len(reference) >= 10
    assert all(row.badge == "paper" for row in reference)
    assert {("BAGEL-7B", "direct"), ("BAGEL-7B", "stepwise")} <= {
        (row.name, row.protocol) for row in reference
    }
    ours = {(row.slug, row.protocol): row for row in rows if row.slug in DEMO_SLUGS}
    assert set(ours) == {(slug, p) for slug in DEMO_SLUGS for p in ("direct", "stepwise")}
    for model in DEMO_MODELS:
        for protocol in ("direct", "stepwise"):
            row = ours[(model.slug, protocol)]
            assert (row.name, row.kind, row.reference) == (model.name, "unified", False)
            categories = expected_geu(model, protocol)
            assert number(row.geu) == pytest.approx(sum(categories.values()) / 4, abs=0.05)
            # GEU only: the UEG score and so the total are undefined.
            assert (row.ueg, row.total) == (UNDEFINED, UNDEFINED)

    chart = chart_state(page, "#gain-chart")
    assert chart["type"] == "scatter"
    assert chart["painted"] > 1000
    table = page.locator("#gain-table tbody tr[data-model]")
    assert table.count() > 0
    points = chart["datasets"][0]["data"]
    assert len(points) == table.count()
    for index in range(table.count()):
        line = table.nth(index)
        cells = line.locator("td").all_inner_texts()
        direct, stepwise = float(cells[1]), float(cells[2])
        assert direct == pytest.approx(float(line.get_attribute("data-direct") or ""), abs=0.05)
        assert stepwise == pytest.approx(float(line.get_attribute("data-stepwise") or ""), abs=0.05)
        assert number(cells[3]) == pytest.approx(stepwise - direct, abs=0.15)
        assert (points[index]["label"], points[index]["x"], points[index]["y"]) == (
            cells[0],
            float(line.get_attribute("data-direct") or ""),
            float(line.get_attribute("data-stepwise") or ""),
        )
    shoot(page, screenshot_dir, "leaderboard")

    chartjs = [
        (url, status) for url, status in traffic.responses if "/static/vendor/chartjs/" in url
    ]
    assert chartjs
    assert all(url.startswith(f"http://{LOCAL_HOST}:") for url, _ in chartjs)
    assert all(status == 200 for _, status in chartjs)
    assert traffic.responses
    assert all(url.startswith(f"http://{LOCAL_HOST}:") for url, _ in traffic.responses)
    assert traffic.blocked == []


def test_gain_chart_geu_axis(page: Page, screenshot_dir: Path) -> None:
    """On the GEU axis the demo models have both protocols, so the chart plots them."""
    page.goto("/")
    page.locator("#filters select[name='axis']").select_option("GEU")
    page.locator("#filters button[type='submit']").click()
    page.wait_for_url(re.compile(r"axis=GEU"))

    rows = page.locator("#gain-table tbody tr[data-model]")
    gain_rows = {
        row.get_attribute("data-model"): row.locator("td").all_inner_texts() for row in rows.all()
    }
    chart = chart_state(page, "#gain-chart")
    assert {point["label"] for point in chart["datasets"][0]["data"]} == set(gain_rows)
    for model in DEMO_MODELS:
        direct = sum(expected_geu(model, "direct").values()) / 4
        stepwise = sum(expected_geu(model, "stepwise").values()) / 4
        cells = gain_rows[model.name]
        assert float(cells[1]) == pytest.approx(direct, abs=0.05)
        assert float(cells[2]) == pytest.approx(stepwise, abs=0.05)
        assert number(cells[3]) == pytest.approx(stepwise - direct, abs=0.05)
    shoot(page, screenshot_dir, "leaderboard-geu")


def test_filter_by_protocol_and_kind(page: Page, screenshot_dir: Path) -> None:
    page.goto("/")
    form = page.locator("#filters")
    form.locator("select[name='protocol']").select_option("stepwise")
    form.locator("select[name='kind']").select_option("unified")
    form.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"protocol=stepwise.*kind=unified"))

    rows = board_rows(page)
    assert rows
    assert {(row.protocol, row.kind) for row in rows} == {("stepwise", "unified")}
    assert {row.slug for row in rows} >= DEMO_SLUGS
    assert any(row.reference for row in rows)
    assert form.locator("select[name='protocol']").input_value() == "stepwise"
    assert form.locator("select[name='kind']").input_value() == "unified"
    shoot(page, screenshot_dir, "filter")


def assert_sorted(values: list[str], descending: bool) -> None:
    """Defined values in order, then every undefined value."""
    defined = [number(value) for value in values if value != UNDEFINED]
    assert values == [value for value in values if value != UNDEFINED] + [UNDEFINED] * (
        len(values) - len(defined)
    ), f"undefined values are not last: {values}"
    assert defined == sorted(defined, reverse=descending), values


def test_sort_by_geu_both_ways(page: Page, screenshot_dir: Path) -> None:
    page.goto("/")
    page.locator("#leaderboard a[data-sort='GEU']").click()
    page.wait_for_url(re.compile(r"sort=GEU.*order=desc"))
    link = page.locator("#leaderboard a[data-sort='GEU']")
    assert link.get_attribute("aria-sort") == "descending"
    values = [row.geu for row in board_rows(page)]
    assert UNDEFINED in values
    assert values[0] != UNDEFINED
    assert_sorted(values, descending=True)

    link.click()
    page.wait_for_url(re.compile(r"sort=GEU.*order=asc"))
    assert page.locator("#leaderboard a[data-sort='GEU']").get_attribute("aria-sort") == (
        "ascending"
    )
    ascending = [row.geu for row in board_rows(page)]
    assert_sorted(ascending, descending=False)
    assert sorted(ascending) == sorted(values)
    shoot(page, screenshot_dir, "sort")


def test_intervals_under_values(page: Page, screenshot_dir: Path) -> None:
    page.goto("/")
    assert page.locator("#leaderboard .ci").count() == 0
    page.locator("#filters input[name='intervals']").check()
    page.locator("#filters").get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"intervals=1"))

    assert page.locator("#filters input[name='intervals']").is_checked()
    intervals = page.locator("#leaderboard tbody .ci").all_inner_texts()
    assert intervals
    assert all(PERCENT_INTERVAL.match(text) or SIGNED_INTERVAL.match(text) for text in intervals)
    for model in DEMO_MODELS:
        cell = page.locator(
            f"#leaderboard tr[data-model='{model.slug}'][data-protocol='direct'] td.num.strong"
        ).nth(1)
        value = number(cell.evaluate("(cell) => cell.childNodes[0].textContent.trim()"))
        match = PERCENT_INTERVAL.match(cell.locator(".ci").inner_text())
        assert match, cell.inner_text()
        assert float(match[1]) <= value <= float(match[2])
    shoot(page, screenshot_dir, "intervals")


def test_open_a_model(page: Page, screenshot_dir: Path) -> None:
    model = DEMO_MODELS[0]
    page.goto("/")
    page.locator(f"#leaderboard tr[data-model='{model.slug}'][data-protocol='direct'] a").click()
    page.wait_for_url(f"**/models/{model.slug}")

    assert page.locator("h1").inner_text() == model.name
    table = page.locator("#category-table")
    assert table.locator("thead th[data-protocol]").evaluate_all(
        "cells => cells.map((cell) => cell.dataset.protocol)"
    ) == ["direct", "stepwise"]
    values: dict[str, dict[str, str]] = {}
    for row in table.locator("tbody tr[data-category]").all():
        key = row.get_attribute("data-category") or ""
        values[key] = {
            protocol: row.locator(f"td[data-protocol='{protocol}']").get_attribute("data-value")
            or ""
            for protocol in ("direct", "stepwise")
        }
    assert set(values) == set(CATEGORIES_BY_AXIS["UEG"]) | set(CATEGORIES_BY_AXIS["GEU"])
    for protocol in ("direct", "stepwise"):
        expected = expected_geu(model, protocol)
        for key in CATEGORIES_BY_AXIS["GEU"]:
            assert float(values[key][protocol]) == pytest.approx(expected[key], abs=0.01)
        for key in CATEGORIES_BY_AXIS["UEG"]:
            assert values[key][protocol] == ""

    chart = chart_state(page, "#category-chart")
    assert chart["type"] == "bar"
    assert chart["painted"] > 1000
    labels = table.locator("tbody tr[data-category]").evaluate_all(
        "rows => rows.map((row) => row.dataset.category)"
    )
    for dataset in chart["datasets"]:
        drawn = dict(zip(labels, dataset["data"], strict=True))
        for key in CATEGORIES_BY_AXIS["GEU"]:
            assert drawn[key] == pytest.approx(float(values[key][dataset["label"]]))
    shoot(page, screenshot_dir, "model")


def test_compare_two_models(page: Page, screenshot_dir: Path) -> None:
    first, second = DEMO_MODELS[0], DEMO_MODELS[2]
    page.goto("/")
    page.get_by_role("link", name="compare two models").click()
    page.wait_for_url("**/compare")
    form = page.locator("#compare-form")
    form.locator("select[name='a']").select_option(first.slug)
    form.locator("select[name='b']").select_option(second.slug)
    form.locator("select[name='protocol']").select_option("direct")
    form.get_by_role("button", name="Compare").click()
    page.wait_for_url(re.compile(r"/compare\?a=.*&b=.*&protocol=direct"))

    table = page.locator("#comparison")
    header = table.locator("thead").inner_text()
    assert first.name in header
    assert second.name in header
    for key in [*CATEGORIES_BY_AXIS["GEU"], "GEU"]:
        cells = table.locator(f"tr[data-key='{key}'] td")
        a_value, b_value = (
            number(cells.nth(column).evaluate("(c) => c.childNodes[0].textContent.trim()"))
            for column in (1, 2)
        )
        difference = cells.nth(3)
        difference_text = difference.locator("span").first.inner_text()
        assert SIGNED.match(difference_text), difference_text
        assert number(difference_text) == pytest.approx(b_value - a_value, abs=0.15)
        interval = SIGNED_INTERVAL.match(difference.locator(".ci").inner_text())
        assert interval, difference.inner_text()
        assert number(interval[1]) <= number(difference_text) <= number(interval[2])
        assert P_VALUE.match(cells.nth(4).inner_text()), cells.nth(4).inner_text()
    # Alpha has 18 of 20 items right and Gamma 5, so the GEU difference's interval excludes 0.
    assert table.locator("tr[data-key='GEU'] span.sig").count() == 1
    for key in CATEGORIES_BY_AXIS["UEG"]:
        assert table.locator(f"tr[data-key='{key}'] td").nth(3).inner_text() == UNDEFINED
    shoot(page, screenshot_dir, "compare")


def test_csv_download_matches_page(page: Page, screenshot_dir: Path) -> None:
    page.goto("/")
    page.locator("#leaderboard a[data-sort='GEU']").click()
    page.wait_for_url(re.compile(r"sort=GEU"))
    rows = board_rows(page)

    with page.expect_download() as download_info:
        page.locator("#export-csv").click()
    download = download_info.value
    assert download.suggested_filename == "realunify-leaderboard.csv"
    with Path(download.path()).open(encoding="utf-8", newline="") as handle:
        lines = list(csv.DictReader(handle))

    assert rows
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        assert (line["position"], line["model"], line["protocol"]) == (
            row.position,
            row.name,
            row.protocol,
        )
        for column, page_text in (("total", row.total), ("GEU", row.geu), ("UEG", row.ueg)):
            exported = line[column]
            assert (UNDEFINED if exported == "" else f"{float(exported):.1f}") == page_text, (
                row.name,
                row.protocol,
                column,
            )
    shoot(page, screenshot_dir, "csv")


def test_about_defines_the_metrics(page: Page, screenshot_dir: Path) -> None:
    page.goto("/")
    page.locator("header nav").get_by_role("link", name="About").click()
    page.wait_for_url("**/about")

    assert page.locator("h1").inner_text() == "About the scores"

    def definition(term: str) -> str:
        item = page.locator("li", has=page.locator("strong", has_text=term))
        assert item.count() == 1, term
        return " ".join(item.inner_text().split())

    assert "stepwise accuracy − direct accuracy of the same model" in definition(
        "Decomposition gain"
    )
    assert "best specialist pipeline's stepwise score − the model's direct score" in definition(
        "Gap to the specialist pipeline"
    )
    assert "1 + the number of rows whose lower bound is above its upper bound" in definition(
        "Rank bands"
    )
    shoot(page, screenshot_dir, "about")
