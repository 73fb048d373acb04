"""Tests of the demo benchmark builder.

The GEU answers are derived again here from the written PNG files where that is practical: the
jigsaw is reassembled, the tracking row is read from its pixels, the shapes are counted from their
pixels and the maze walls are read from the image before a separate breadth-first search.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter, deque
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from app.demo import build

UEG_FILES = ("UEG_direct", "UEG_step")
GEU_FILES = ("GEU_direct", "GEU_step")
REPO_DEMO = Path(__file__).resolve().parents[2] / "demo"

Shape = tuple[str, str]
Cell = tuple[int, int]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("demo")
    build.build_demo(out_dir)
    return out_dir


def load(demo_dir: Path, name: str) -> list[dict[str, Any]]:
    data = json.loads((demo_dir / build.BENCHMARK_DIR / f"{name}.json").read_text("utf-8"))
    assert isinstance(data, list)
    return data


def load_baseline(demo_dir: Path, name: str) -> list[dict[str, Any]]:
    data = json.loads((demo_dir / build.BASELINES_DIR / name).read_text("utf-8"))
    assert isinstance(data, list)
    return data


def file_bytes(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


# Pixel reading, written separately from the builder's drawing code.

_RGB_TO_NAME = {rgb: name for name, rgb in build.PALETTE.items()}


def colour_names(path: Path) -> NDArray[np.str_]:
    """Map every pixel of a PNG to its palette colour name, failing on any other colour."""
    pixels = np.asarray(Image.open(path).convert("RGB"))
    names = np.full(pixels.shape[:2], "", dtype="<U6")
    for rgb, name in _RGB_TO_NAME.items():
        names[np.all(pixels == np.array(rgb, dtype=np.uint8), axis=-1)] = name
    assert (names != "").all(), f"{path.name} has pixels outside the demo palette"
    return names


def components(mask: NDArray[np.bool_]) -> list[list[tuple[int, int]]]:
    """Return the 4-connected components of ``mask`` as lists of (y, x) pixels."""
    seen = np.zeros(mask.shape, dtype=bool)
    found = []
    height, width = mask.shape
    for y, x in np.argwhere(mask):
        if seen[y, x]:
            continue
        seen[y, x] = True
        queue = deque([(int(y), int(x))])
        pixels = []
        while queue:
            cy, cx = queue.popleft()
            pixels.append((cy, cx))
            for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        found.append(pixels)
    return found


def find_shapes(names: NDArray[np.str_]) -> list[dict[str, Any]]:
    """Find every shape of a colour in COLOURS, classified by how much of its box it fills."""
    shapes = []
    for colour in build.COLOURS:
        for pixels in components(names == colour):
            ys = [p[0] for p in pixels]
            xs = [p[1] for p in pixels]
            width = max(xs) - min(xs) + 1
            height = max(ys) - min(ys) + 1
            fill = len(pixels) / (width * height)
            if fill > 0.95:
                kind = "square"
            elif fill > 0.68:
                kind = "circle"
            else:
                kind = "triangle"
            shapes.append(
                {
                    "colour": colour,
                    "kind": kind,
                    "x": (min(xs) + max(xs)) / 2,
                    "y": (min(ys) + max(ys)) / 2,
                    "width": width,
                }
            )
    return shapes


def only_shape(names: NDArray[np.str_]) -> Shape:
    shapes = find_shapes(names)
    assert len(shapes) == 1, f"expected one shape, found {shapes}"
    return shapes[0]["colour"], shapes[0]["kind"]


# Benchmark files


def test_build_is_byte_identical(tmp_path: Path, demo_dir: Path) -> None:
    second = tmp_path / "second"
    assert build.main([str(second)]) == 0
    first_files = file_bytes(demo_dir)
    second_files = file_bytes(second)
    assert sorted(first_files) == sorted(second_files)
    for name, content in first_files.items():
        assert second_files[name] == content, f"{name} differs between two builds"


def test_build_writes_expected_files(demo_dir: Path) -> None:
    benchmark = demo_dir / build.BENCHMARK_DIR
    for name in UEG_FILES + GEU_FILES:
        assert (benchmark / f"{name}.json").is_file()
    for item in load(demo_dir, "GEU_direct"):
        assert (benchmark / item["image"]).is_file()
    baselines = demo_dir / build.BASELINES_DIR
    for stem in GEU_FILES:
        for model in ("solver", "random", "partial"):
            assert (baselines / f"{stem}.{model}.json").is_file()
    for stem in UEG_FILES:
        for model in ("reference", "partial"):
            assert (baselines / f"{stem}.{model}.json").is_file()
    assert (baselines / "README.md").is_file()


def test_files_are_utf8_with_indent_2(demo_dir: Path) -> None:
    for name in UEG_FILES + GEU_FILES:
        text = (demo_dir / build.BENCHMARK_DIR / f"{name}.json").read_text("utf-8")
        assert text == json.dumps(json.loads(text), ensure_ascii=False, indent=2) + "\n"


@pytest.mark.parametrize(
    ("name", "categories"),
    [
        ("UEG_direct", build.UEG_CATEGORIES),
        ("UEG_step", build.UEG_CATEGORIES),
        ("GEU_direct", build.GEU_CATEGORIES),
        ("GEU_step", build.GEU_CATEGORIES),
    ],
)
def test_five_items_per_category(demo_dir: Path, name: str, categories: tuple[str, ...]) -> None:
    items = load(demo_dir, name)
    assert Counter(item["task_type"] for item in items) == {category: 5 for category in categories}


@pytest.mark.parametrize("name", UEG_FILES + GEU_FILES)
def test_indices_unique_from_zero(demo_dir: Path, name: str) -> None:
    indices = [item["index"] for item in load(demo_dir, name)]
    assert all(type(index) is int for index in indices)
    assert sorted(indices) == list(range(len(indices)))


@pytest.mark.parametrize("name", UEG_FILES + GEU_FILES)
def test_subtasks_per_category(demo_dir: Path, name: str) -> None:
    subtasks: dict[str, set[str]] = {}
    for item in load(demo_dir, name):
        assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)*", item["subtask"]), item["subtask"]
        subtasks.setdefault(item["task_type"], set()).add(item["subtask"])
    for category, names in subtasks.items():
        assert 2 <= len(names) <= 3, f"{category} has subtasks {sorted(names)}"


# UEG

_COLOUR = "(red|green|blue|yellow|black)"
_KIND = "(circle|square|triangle)"
QUESTION_FORMS = {
    "count": re.compile(rf"Are there exactly (\d+) {_COLOUR} {_KIND}s in the image\?"),
    "presence": re.compile(rf"Is there a {_COLOUR} {_KIND} in the image\?"),
    "relation": re.compile(
        rf"Is the {_COLOUR} {_KIND} (to the left of|above) the {_COLOUR} {_KIND}\?"
    ),
    "background": re.compile(r"Is the background white\?"),
}


def answer_from_pixels(question: str, names: NDArray[np.str_]) -> str:
    shapes = find_shapes(names)

    def matching(colour: str, kind: str) -> list[dict[str, Any]]:
        return [s for s in shapes if s["colour"] == colour and s["kind"] == kind]

    if QUESTION_FORMS["background"].fullmatch(question):
        corners = {names[0, 0], names[0, -1], names[-1, 0], names[-1, -1]}
        return "yes" if corners == {"white"} else "no"
    if match := QUESTION_FORMS["count"].fullmatch(question):
        return "yes" if len(matching(match[2], match[3])) == int(match[1]) else "no"
    if match := QUESTION_FORMS["presence"].fullmatch(question):
        return "yes" if matching(match[1], match[2]) else "no"
    match = QUESTION_FORMS["relation"].fullmatch(question)
    assert match is not None, question
    first, second = matching(match[1], match[2]), matching(match[4], match[5])
    if len(first) != 1 or len(second) != 1:
        return "no"
    axis = "x" if match[3] == "to the left of" else "y"
    return "yes" if first[0][axis] < second[0][axis] else "no"


def test_ueg_direct_and_step_match(demo_dir: Path) -> None:
    direct = load(demo_dir, "UEG_direct")
    step = load(demo_dir, "UEG_step")
    assert len(direct) == len(step) == 30
    for direct_item, step_item in zip(direct, step, strict=True):
        for key in ("index", "task_type", "subtask", "question_list"):
            assert direct_item[key] == step_item[key]
        assert direct_item["prompt"] in step_item["new_prompt"]
        assert step_item["new_prompt"] != direct_item["prompt"]
        assert "prompt" not in step_item
        assert "new_prompt" not in direct_item


def test_ueg_questions_follow_grammar(demo_dir: Path) -> None:
    answers = []
    for item in load(demo_dir, "UEG_direct"):
        assert 1 <= len(item["question_list"]) <= 3
        for entry in item["question_list"]:
            assert set(entry) == {"question", "answer"}
            assert entry["answer"] in ("yes", "no")
            forms = [
                f for f, pattern in QUESTION_FORMS.items() if pattern.fullmatch(entry["question"])
            ]
            assert len(forms) == 1, entry["question"]
            assert build.parse_question(entry["question"]) is not None
            answers.append(entry["answer"])
    assert answers.count("no") >= 10


def test_parse_question_rejects_other_text() -> None:
    for text in (
        "Are there exactly 3 purple circles in the image?",
        "Is there a red star in the image?",
        "Is the red circle below the blue square?",
        "Are there exactly three red circles in the image?",
    ):
        with pytest.raises(ValueError):
            build.parse_question(text)


def test_ueg_reference_images_match_answers(demo_dir: Path) -> None:
    reference = load_baseline(demo_dir, "UEG_direct.reference.json")
    assert len(reference) == 30
    for item in reference:
        names = colour_names(demo_dir / build.BASELINES_DIR / item["generated_image"])
        for entry in item["question_list"]:
            computed = answer_from_pixels(entry["question"], names)
            assert computed == entry["answer"], f"item {item['index']}: {entry['question']}"


def test_ueg_step_reference_has_response(demo_dir: Path) -> None:
    reference = load_baseline(demo_dir, "UEG_step.reference.json")
    step = load(demo_dir, "UEG_step")
    for item, original in zip(reference, step, strict=True):
        assert item["response"].strip()
        assert item["generated_image"].endswith(".png")
        assert {
            k: v for k, v in item.items() if k not in ("response", "generated_image")
        } == original


def test_code_snippets_draw_described_scene() -> None:
    tasks = [task for task in build.ueg_tasks() if task.task_type == "code_to_image"]
    assert len(tasks) == 5
    first = tasks[0]
    assert len(first.scene) == 4
    assert {(s.colour, s.kind) for s in first.scene} == {("red", "circle")}
    assert [s.x for s in first.scene] == [80, 160, 240, 320]


# UEG partial baselines

UEG_PARTIAL_FILES = ("UEG_direct.partial.json", "UEG_step.partial.json")
# Indices of the items that each partial file is expected to fail, written out here so that a
# change of the builder's choice shows up as a failure.
PARTIAL_FAILING = {
    "UEG_direct.partial.json": {0, 2, 3, 8, 9, 10, 11, 13, 15, 19, 20, 22, 23, 26, 28},
    "UEG_step.partial.json": {2, 8, 11, 19, 22, 28},
}
PARTIAL_MISSING = {
    "UEG_direct.partial.json": {"ueg_partial_direct/missing_0009.png"},
    "UEG_step.partial.json": {"ueg_partial_step/missing_0022.png"},
}
PARTIAL_FOLDERS = {
    "UEG_direct.partial.json": "ueg_partial_direct",
    "UEG_step.partial.json": "ueg_partial_step",
}


def questions_by_index(demo_dir: Path) -> dict[int, list[dict[str, str]]]:
    return {item["index"]: item["question_list"] for item in load(demo_dir, "UEG_direct")}


def partial_outcomes(demo_dir: Path, name: str) -> dict[int, bool]:
    """Judge every item of a partial file from its picture's pixels; a missing picture fails."""
    questions = questions_by_index(demo_dir)
    outcomes = {}
    for item in load_baseline(demo_dir, name):
        path = demo_dir / build.BASELINES_DIR / item["generated_image"]
        if not path.is_file():
            outcomes[item["index"]] = False
            continue
        names = colour_names(path)
        outcomes[item["index"]] = all(
            answer_from_pixels(entry["question"], names) == entry["answer"]
            for entry in questions[item["index"]]
        )
    return outcomes


def partial_accuracy(demo_dir: Path, name: str) -> dict[str, float]:
    outcomes = partial_outcomes(demo_dir, name)
    categories = {item["index"]: item["task_type"] for item in load(demo_dir, "UEG_direct")}
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for index, passed in outcomes.items():
        total[categories[index]] += 1
        right[categories[index]] += passed
    return {
        category: 100.0 * right[category] / total[category] for category in build.UEG_CATEGORIES
    }


@pytest.mark.parametrize("name", UEG_PARTIAL_FILES)
def test_ueg_partial_items_drop_questions(demo_dir: Path, name: str) -> None:
    stepwise = name.startswith("UEG_step")
    benchmark = load(demo_dir, "UEG_step" if stepwise else "UEG_direct")
    partial = load_baseline(demo_dir, name)
    assert len(partial) == len(benchmark) == 30
    added = {"response", "generated_image"} if stepwise else {"generated_image"}
    for item, original in zip(partial, benchmark, strict=True):
        assert "question_list" not in item
        assert set(item) - set(original) == added
        assert {k: v for k, v in item.items() if k not in added} == {
            k: v for k, v in original.items() if k != "question_list"
        }
        assert re.fullmatch(
            rf"{PARTIAL_FOLDERS[name]}/(ueg|missing)_{item['index']:04d}\.png",
            item["generated_image"],
        ), item["generated_image"]
        if stepwise:
            assert isinstance(item["response"], str) and item["response"].startswith("Draw ")


@pytest.mark.parametrize("name", UEG_PARTIAL_FILES)
def test_ueg_partial_outcomes_from_pixels(demo_dir: Path, name: str) -> None:
    outcomes = partial_outcomes(demo_dir, name)
    failing = {index for index, passed in outcomes.items() if not passed}
    assert failing == PARTIAL_FAILING[name]


@pytest.mark.parametrize("name", UEG_PARTIAL_FILES)
def test_ueg_partial_pictures_are_palette_pngs(demo_dir: Path, name: str) -> None:
    for item in load_baseline(demo_dir, name):
        if item["generated_image"] in PARTIAL_MISSING[name]:
            continue
        path = demo_dir / build.BASELINES_DIR / item["generated_image"]
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert image.mode == "P"
            assert image.size == (400, 400)
            assert image.info == {}, f"{path.name} carries metadata {image.info}"
        assert path.stat().st_size < 2000, f"{path.name} is {path.stat().st_size} bytes"
        corners = colour_names(path)[[0, 0, -1, -1], [0, -1, 0, -1]]
        assert set(corners) == {"white"}


@pytest.mark.parametrize("root", ["fresh", "repo"])
def test_ueg_partial_missing_images_not_shipped(demo_dir: Path, root: str) -> None:
    base = demo_dir if root == "fresh" else REPO_DEMO
    if not base.is_dir():
        pytest.skip("demo/ is not in this checkout")
    for name in UEG_PARTIAL_FILES:
        named = {item["generated_image"] for item in load_baseline(base, name)}
        missing = {path for path in named if not (base / build.BASELINES_DIR / path).is_file()}
        assert missing == PARTIAL_MISSING[name]
        folder = base / build.BASELINES_DIR / PARTIAL_FOLDERS[name]
        shipped = {f"{PARTIAL_FOLDERS[name]}/{path.name}" for path in folder.iterdir()}
        assert shipped == named - missing, "the folder holds pictures that the file does not name"


def test_ueg_partial_direct_scores_below_stepwise(demo_dir: Path) -> None:
    direct = partial_accuracy(demo_dir, "UEG_direct.partial.json")
    step = partial_accuracy(demo_dir, "UEG_step.partial.json")
    direct_score = sum(direct.values()) / len(direct)
    step_score = sum(step.values()) / len(step)
    assert direct_score < step_score
    assert direct_score == 50.0
    assert step_score == 80.0
    # Every category has right and wrong items under both protocols.
    assert all(0 < value < 100 for value in (*direct.values(), *step.values()))
    assert all(direct[category] <= step[category] for category in build.UEG_CATEGORIES)


COUNT_REWRITE = re.compile(rf"Draw (\d+|one) {_COLOUR} {_KIND}s?( in the centre| in a row)?\.")


def test_ueg_partial_step_pictures_follow_rewrite(demo_dir: Path) -> None:
    reference = {
        item["index"]: item["response"]
        for item in load_baseline(demo_dir, "UEG_step.reference.json")
    }
    tasks = build.ueg_tasks()
    mistakes = build.ueg_mistakes(tasks)
    checked_counts = 0
    for item in load_baseline(demo_dir, "UEG_step.partial.json"):
        index = item["index"]
        wrong_rewrite = index in PARTIAL_FAILING["UEG_step.partial.json"] and (
            item["generated_image"] not in PARTIAL_MISSING["UEG_step.partial.json"]
        )
        if wrong_rewrite:
            assert item["response"] != reference[index]
            assert item["response"] == mistakes[index].explicit_prompt
            scene = mistakes[index].scene
        else:
            assert item["response"] == reference[index]
            scene = tasks[index].scene
        path = demo_dir / build.BASELINES_DIR / item["generated_image"]
        if not path.is_file():
            continue
        shapes = find_shapes(colour_names(path))
        drawn = Counter((s["colour"], s["kind"]) for s in shapes)
        assert drawn == Counter((s.colour, s.kind) for s in scene), f"item {index}"
        if match := COUNT_REWRITE.fullmatch(item["response"]):
            number = 1 if match[1] == "one" else int(match[1])
            assert drawn == {(match[2], match[3]): number}, f"item {index}: {item['response']}"
            checked_counts += 1
    assert checked_counts >= 8


def test_ueg_mistake_that_passes_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = build.ueg_tasks()
    table = build._ueg_mistake_table()
    table[5] = build.UegMistake(tasks[5].explicit_prompt, tasks[5].scene)
    monkeypatch.setattr(build, "_ueg_mistake_table", lambda: table)
    with pytest.raises(ValueError, match="item 5 passes"):
        build.ueg_mistakes(tasks)


def test_readme_lists_ueg_partial_accuracy(demo_dir: Path) -> None:
    readme = (demo_dir / build.BASELINES_DIR / "README.md").read_text("utf-8")
    for name in UEG_PARTIAL_FILES:
        values = partial_accuracy(demo_dir, name)
        cells = " | ".join(f"{value:.0f}" for value in values.values())
        mean = sum(values.values()) / len(values)
        line = next(line for line in readme.splitlines() if line.startswith(f"| `{name}`"))
        assert line.endswith(f"| {cells} | {mean:.1f} |"), line
        for path in PARTIAL_MISSING[name]:
            assert f"`{path}`" in readme


# GEU

OPTION_LINE = re.compile(r"([A-D])\. (.+)")


def split_prompt(prompt: str) -> tuple[str, dict[str, str]]:
    lines = prompt.split("\n")
    assert lines[-1] == "Answer with the option's letter only."
    option_lines = lines[-5:-1]
    options = {}
    for letter, line in zip("ABCD", option_lines, strict=True):
        match = OPTION_LINE.fullmatch(line)
        assert match is not None and match[1] == letter, line
        options[letter] = match[2]
    assert len(set(options.values())) == 4, options
    return "\n".join(lines[:-5]), options


def test_geu_direct_and_step_match(demo_dir: Path) -> None:
    direct = load(demo_dir, "GEU_direct")
    step = load(demo_dir, "GEU_step")
    for direct_item, step_item in zip(direct, step, strict=True):
        for key in ("index", "task_type", "subtask", "image", "answer"):
            assert direct_item[key] == step_item[key]
        assert (
            split_prompt(direct_item["evaluation_prompt"])[1]
            == (split_prompt(step_item["evaluation_prompt"])[1])
        )
        assert step_item["edit_prompt"].strip()
        assert "edit_prompt" not in direct_item


def test_geu_answers_spread_over_letters(demo_dir: Path) -> None:
    answers = [item["answer"] for item in load(demo_dir, "GEU_direct")]
    assert Counter(answers) == {"A": 5, "B": 5, "C": 5, "D": 5}
    for category in build.GEU_CATEGORIES:
        in_category = [
            item["answer"] for item in load(demo_dir, "GEU_direct") if item["task_type"] == category
        ]
        assert len(set(in_category)) >= 2, category


def puzzles_of(category: str) -> list[build.GeuPuzzle]:
    return [puzzle for puzzle in build.geu_puzzles() if puzzle.task_type == category]


def items_by_index(demo_dir: Path, name: str) -> dict[int, dict[str, Any]]:
    return {item["index"]: item for item in load(demo_dir, name)}


def test_jigsaw_reassembles_to_original(demo_dir: Path) -> None:
    items = items_by_index(demo_dir, "GEU_direct")
    for puzzle in puzzles_of("mental_reconstruction"):
        detail = puzzle.detail
        assert isinstance(detail, build.ReconstructionDetail)
        shuffled = np.asarray(
            Image.open(demo_dir / build.BENCHMARK_DIR / items[puzzle.index]["image"]).convert("RGB")
        )
        original = np.asarray(detail.original.convert("RGB"))
        patch = shuffled.shape[0] // detail.grid
        assert sorted(detail.permutation) == list(range(detail.grid**2))

        restored = np.zeros_like(shuffled)
        for position, source in enumerate(detail.permutation):
            row, column = divmod(position, detail.grid)
            source_row, source_column = divmod(source, detail.grid)
            restored[
                source_row * patch : (source_row + 1) * patch,
                source_column * patch : (source_column + 1) * patch,
            ] = shuffled[row * patch : (row + 1) * patch, column * patch : (column + 1) * patch]
        assert np.array_equal(restored, original), f"item {puzzle.index} does not reassemble"
        assert not np.array_equal(shuffled, original), f"item {puzzle.index} is not shuffled"


def restored_cells(
    shuffled: NDArray[np.str_], permutation: tuple[int, ...], grid: int
) -> list[Shape]:
    patch = shuffled.shape[0] // grid
    cells: list[Shape] = [("", "")] * (grid * grid)
    for position, source in enumerate(permutation):
        row, column = divmod(position, grid)
        region = shuffled[row * patch : (row + 1) * patch, column * patch : (column + 1) * patch]
        cells[source] = only_shape(region)
    return cells


def test_jigsaw_answers_rederived(demo_dir: Path) -> None:
    items = items_by_index(demo_dir, "GEU_direct")
    corners = {
        "top-left": (0, 0),
        "top-right": (0, -1),
        "bottom-left": (-1, 0),
        "bottom-right": (-1, -1),
    }
    for puzzle in puzzles_of("mental_reconstruction"):
        item = items[puzzle.index]
        detail = puzzle.detail
        assert isinstance(detail, build.ReconstructionDetail)
        question, options = split_prompt(item["evaluation_prompt"])
        size = re.search(r"a (\d) x (\d) grid", question)
        assert size is not None and size[1] == size[2]
        grid = int(size[1])
        names = colour_names(demo_dir / build.BENCHMARK_DIR / item["image"])
        cells = restored_cells(names, detail.permutation, grid)
        table = [cells[row * grid : (row + 1) * grid] for row in range(grid)]

        if match := re.search(r"which shape is in the ([a-z-]+) corner\?", question):
            row, column = corners[match[1]]
            expected = table[row][column]
        elif question.endswith("which shape is in the centre?"):
            expected = table[grid // 2][grid // 2]
        else:
            match = re.search(
                r"which shape is directly (to the right of|below) the (\w+) (\w+)\?", question
            )
            assert match is not None, question
            position = cells.index((match[2], match[3]))
            row, column = divmod(position, grid)
            below = match[1] == "below"
            expected = table[row + 1][column] if below else table[row][column + 1]
        assert options[item["answer"]] == f"{expected[0]} {expected[1]}", f"item {puzzle.index}"


STEP_FORMS = {
    "swap_positions": re.compile(r"Swap the shapes at positions (\d) and (\d)\."),
    "swap_named": re.compile(r"Swap the (\w+) (\w+) and the (\w+) (\w+)\."),
    "paint": re.compile(r"Paint the shape at position (\d) (\w+)\."),
}


def simulate_steps(row: list[Shape], steps: list[str]) -> list[Shape]:
    row = list(row)
    for step in steps:
        if match := STEP_FORMS["swap_positions"].fullmatch(step):
            first, second = int(match[1]) - 1, int(match[2]) - 1
        elif match := STEP_FORMS["swap_named"].fullmatch(step):
            assert row.count((match[1], match[2])) == 1, step
            assert row.count((match[3], match[4])) == 1, step
            first, second = row.index((match[1], match[2])), row.index((match[3], match[4]))
        else:
            match = STEP_FORMS["paint"].fullmatch(step)
            assert match is not None, step
            position = int(match[1]) - 1
            row[position] = (match[2], row[position][1])
            continue
        row[first], row[second] = row[second], row[first]
    return row


def test_tracking_answers_rederived(demo_dir: Path) -> None:
    for item in load(demo_dir, "GEU_direct"):
        if item["task_type"] != "mental_tracking":
            continue
        question, options = split_prompt(item["evaluation_prompt"])
        names = colour_names(demo_dir / build.BENCHMARK_DIR / item["image"])
        slot = names.shape[1] // 5
        initial = [only_shape(names[:110, p * slot : (p + 1) * slot]) for p in range(5)]
        steps = re.findall(r"^\d\. (.+)$", question, flags=re.MULTILINE)
        assert 3 <= len(steps) <= 4
        final = simulate_steps(initial, steps)

        last = question.split("\n")[-1]
        if match := re.fullmatch(r"After the last step, which shape is at position (\d)\?", last):
            shape = final[int(match[1]) - 1]
            expected = f"{shape[0]} {shape[1]}"
        elif match := re.fullmatch(
            r"After the last step, at which position is the (\w+) (\w+)\?", last
        ):
            assert final.count((match[1], match[2])) == 1
            expected = str(final.index((match[1], match[2])) + 1)
        else:
            match = re.fullmatch(r"After the last step, how many shapes are (\w+)\?", last)
            assert match is not None, last
            expected = str(sum(1 for colour, _ in final if colour == match[1]))
        assert options[item["answer"]] == expected, f"item {item['index']}"


def test_counting_answers_rederived(demo_dir: Path) -> None:
    for item in load(demo_dir, "GEU_direct"):
        if item["task_type"] != "attentional_focusing":
            continue
        question, options = split_prompt(item["evaluation_prompt"])
        match = re.fullmatch(r"How many (small )?(\w+) (\w+)s are in the image\?.*", question)
        assert match is not None, question
        names = colour_names(demo_dir / build.BENCHMARK_DIR / item["image"])
        assert names.shape == (1024, 1024)
        shapes = [
            s for s in find_shapes(names) if s["colour"] == match[2] and s["kind"] == match[3]
        ]
        small = [s for s in shapes if s["width"] < 60]
        if match[1]:
            assert len(small) < len(shapes), "a small-only question needs large distractors"
        assert options[item["answer"]] == str(len(small)), f"item {item['index']}"


def read_maze(path: Path) -> tuple[int, int, set[tuple[Cell, Cell]], Cell, Cell]:
    """Read the open passages, S and E from a maze image, using the builder's grid geometry."""
    names = colour_names(path)
    cell, margin = build.MAZE_CELL, build.MAZE_MARGIN
    rows = (names.shape[0] - 2 * margin) // cell
    cols = (names.shape[1] - 2 * margin) // cell
    passages = set()
    starts, ends = [], []
    for row in range(rows):
        for column in range(cols):
            top, left = margin + row * cell, margin + column * cell
            inside = names[top + 5, left + 5]
            if inside == "green":
                starts.append((row, column))
            elif inside == "red":
                ends.append((row, column))
            if column + 1 < cols and names[top + cell // 2, left + cell] == "white":
                passages.add(((row, column), (row, column + 1)))
            if row + 1 < rows and names[top + cell, left + cell // 2] == "white":
                passages.add(((row, column), (row + 1, column)))
    assert len(starts) == 1, f"expected one green S cell, found {starts}"
    assert len(ends) == 1, f"expected one red E cell, found {ends}"
    return rows, cols, passages, starts[0], ends[0]


def bfs(passages: set[tuple[Cell, Cell]], start: Cell, end: Cell) -> list[Cell]:
    graph: dict[Cell, list[Cell]] = {}
    for a, b in passages:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, []).append(a)
    parent: dict[Cell, Cell | None] = {start: None}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        for following in graph.get(current, []):
            if following not in parent:
                parent[following] = current
                queue.append(following)
    assert end in parent, "E is not reachable from S"
    path = [end]
    while (previous := parent[path[-1]]) is not None:
        path.append(previous)
    return path[::-1]


MOVES = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


def walk(passages: set[tuple[Cell, Cell]], start: Cell, route: str) -> Cell | None:
    """Follow a route such as "right 2, down 1"; return the end cell, or None at a wall."""
    current = start
    for part in route.split(", "):
        direction, count = part.split(" ")
        for _ in range(int(count)):
            following = (current[0] + MOVES[direction][0], current[1] + MOVES[direction][1])
            if (current, following) not in passages and (following, current) not in passages:
                return None
            current = following
    return current


def test_maze_answers_rederived_from_pixels(demo_dir: Path) -> None:
    items = items_by_index(demo_dir, "GEU_direct")
    for puzzle in puzzles_of("cognitive_navigation"):
        item = items[puzzle.index]
        detail = puzzle.detail
        assert isinstance(detail, build.MazeDetail)
        rows, cols, passages, start, end = read_maze(demo_dir / build.BENCHMARK_DIR / item["image"])
        # Every cell of a perfect maze is reachable and there are no loops.
        assert len(passages) == rows * cols - 1
        assert passages == set(detail.maze.passages)
        path = bfs(passages, start, end)
        _, options = split_prompt(item["evaluation_prompt"])

        if item["subtask"] == "route_moves":
            reaching = [
                letter for letter, route in options.items() if walk(passages, start, route) == end
            ]
            assert reaching == [item["answer"]], f"item {puzzle.index}"
            assert len(path) - 1 == sum(
                int(p.split(" ")[1]) for p in options[item["answer"]].split(", ")
            )
        elif item["subtask"] == "route_turns":
            directions = [(b[0] - a[0], b[1] - a[1]) for a, b in itertools.pairwise(path)]
            turns = sum(1 for d, e in itertools.pairwise(directions) if d != e)
            assert options[item["answer"]] == str(turns), f"item {puzzle.index}"
        else:
            landmarks = dict(detail.landmarks)
            assert sorted(landmarks) == ["A", "B", "C", "D"]
            on_path = [letter for letter, cell in landmarks.items() if cell in path]
            assert on_path == [item["answer"]], f"item {puzzle.index}"
            assert options[item["answer"]] == f"the cell marked {item['answer']}"
            assert start not in landmarks.values()
            assert end not in landmarks.values()


# Baselines

RESPONSE_PATTERNS = (
    re.compile(r"([A-D])"),
    re.compile(r"\(([A-D])\)"),
    re.compile(r"Answer: ([A-D])"),
    re.compile(r"\*\*([A-D])\*\*"),
    re.compile(r"\\boxed\{([A-D])\}"),
    re.compile(r"The answer is ([a-d])\."),
    re.compile(r"Based on the image, the answer is ([A-D])\."),
    re.compile(r"Comparing the options, .+ fits, so the choice is ([A-D])\."),
)


def read_letter(response: str, options: dict[str, str]) -> str:
    for pattern in RESPONSE_PATTERNS:
        if match := pattern.fullmatch(response):
            return match[1].upper()
    by_text = [letter for letter, text in options.items() if text == response]
    assert len(by_text) == 1, f"cannot read a letter from {response!r}"
    return by_text[0]


@pytest.mark.parametrize("stem", GEU_FILES)
@pytest.mark.parametrize("model", ["solver", "random", "partial"])
def test_baselines_omit_answer(demo_dir: Path, stem: str, model: str) -> None:
    benchmark = load(demo_dir, stem)
    baseline = load_baseline(demo_dir, f"{stem}.{model}.json")
    assert len(baseline) == len(benchmark)
    for item, original in zip(baseline, benchmark, strict=True):
        assert "answer" not in item
        assert isinstance(item["response"], str) and item["response"]
        if stem == "GEU_step":
            assert item["edit_image"] == f"edits/geu_{item['index']:04d}.png"
        kept = {k: v for k, v in item.items() if k not in ("response", "edit_image")}
        assert kept == {k: v for k, v in original.items() if k != "answer"}


@pytest.mark.parametrize("stem", GEU_FILES)
def test_solver_letters_equal_answers(demo_dir: Path, stem: str) -> None:
    benchmark = load(demo_dir, stem)
    solver = load_baseline(demo_dir, f"{stem}.solver.json")
    styles = set()
    for item, original in zip(solver, benchmark, strict=True):
        _, options = split_prompt(original["evaluation_prompt"])
        assert read_letter(item["response"], options) == original["answer"], item["response"]
        styles.add(
            next((i for i, p in enumerate(RESPONSE_PATTERNS) if p.fullmatch(item["response"])), -1)
        )
    assert len(styles) == 9, "the solver should use all nine answer styles"


def test_letter_reader_rejects_wrong_text() -> None:
    options = {"A": "red circle", "B": "blue square", "C": "3", "D": "4"}
    assert read_letter("Based on the image, the answer is D.", options) == "D"
    assert read_letter("3", options) == "C"
    with pytest.raises(AssertionError):
        read_letter("green triangle", options)


def accuracy(demo_dir: Path, stem: str, model: str) -> dict[str, float]:
    benchmark = load(demo_dir, stem)
    baseline = load_baseline(demo_dir, f"{stem}.{model}.json")
    right: Counter[str] = Counter()
    for item, original in zip(baseline, benchmark, strict=True):
        _, options = split_prompt(original["evaluation_prompt"])
        if read_letter(item["response"], options) == original["answer"]:
            right[original["task_type"]] += 1
    return {category: 100.0 * right[category] / 5 for category in build.GEU_CATEGORIES}


def test_partial_shows_stepwise_gain(demo_dir: Path) -> None:
    direct = accuracy(demo_dir, "GEU_direct", "partial")
    step = accuracy(demo_dir, "GEU_step", "partial")
    assert sum(direct.values()) / 4 == 50.0
    assert sum(step.values()) / 4 == 80.0
    assert all(value == 80.0 for value in step.values())


def test_random_uses_plain_letters(demo_dir: Path) -> None:
    for stem in GEU_FILES:
        responses = [item["response"] for item in load_baseline(demo_dir, f"{stem}.random.json")]
        assert set(responses) <= set("ABCD")
        assert len(set(responses)) >= 3


def test_readme_lists_computed_accuracy(demo_dir: Path) -> None:
    readme = (demo_dir / build.BASELINES_DIR / "README.md").read_text("utf-8")
    for stem in GEU_FILES:
        for model in ("solver", "random", "partial"):
            values = accuracy(demo_dir, stem, model)
            cells = " | ".join(f"{value:.0f}" for value in values.values())
            line = next(line for line in readme.splitlines() if f"`{stem}.{model}.json`" in line)
            assert f"| {cells} |" in line, line


# Checked-in output


def test_repo_demo_matches_fresh_build(demo_dir: Path) -> None:
    """The committed demo/ folder must be what the builder writes now.

    JSON and Markdown files are compared as bytes and PNG files by their pixels, because PNG
    bytes also depend on the zlib version.
    """
    if not REPO_DEMO.is_dir():
        pytest.skip("demo/ is not in this checkout")
    fresh = file_bytes(demo_dir)
    committed = file_bytes(REPO_DEMO)
    assert sorted(committed) == sorted(fresh), "rerun python -m app.demo.build"
    for name, content in fresh.items():
        if name.endswith(".png"):
            old = np.asarray(Image.open(REPO_DEMO / name).convert("RGB"))
            new = np.asarray(Image.open(demo_dir / name).convert("RGB"))
            assert np.array_equal(old, new), (
                f"{name} is out of date; rerun python -m app.demo.build"
            )
        else:
            assert committed[name] == content, (
                f"{name} is out of date; rerun python -m app.demo.build"
            )
