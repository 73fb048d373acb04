"""Build the RealUnify demo benchmark and its baseline prediction files.

The demo uses the official layout: ``UEG_direct.json``, ``UEG_step.json``, ``GEU_direct.json`` and
``GEU_step.json`` with five items per category and protocol, plus the GEU input images. The script
computes every expected answer itself. A UEG answer is evaluated on the item's reference scene, and
a GEU answer comes from the patch permutation, the simulated steps, the drawn shapes or a
breadth-first search of the maze. The output is deterministic: every random choice uses a fixed
seed, and the PNG files carry no timestamps.

Run ``python -m app.demo.build [OUT_DIR]`` to write ``OUT_DIR/realunify-demo`` and
``OUT_DIR/baselines``. ``docs/demo-benchmark.md`` describes the files and the question grammar.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import re
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from app.scoring.categories import GEU_CATEGORIES, UEG_CATEGORIES

BENCHMARK_DIR = "realunify-demo"
BASELINES_DIR = "baselines"
ITEMS_PER_CATEGORY = 5
SEED = 20260301


KINDS = ("circle", "square", "triangle")
COLOURS = ("red", "green", "blue", "yellow", "black")
LETTERS = ("A", "B", "C", "D")
ALL_SHAPES = tuple((colour, kind) for colour in COLOURS for kind in KINDS)

# RGB values of every colour the demo draws. The position of a colour in this mapping is its
# palette index in the saved PNG files before Pillow optimises the palette.
PALETTE: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (245, 205, 20),
    "black": (0, 0, 0),
    "grey": (150, 150, 150),
}
_PALETTE_INDEX = {name: position for position, name in enumerate(PALETTE)}

# A 5 x 7 bitmap font for the digits and letters drawn into images. A bitmap font keeps the bytes
# of the images independent of the fonts installed on the machine.
_GLYPHS: dict[str, tuple[str, ...]] = {
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11110", "00001", "00001", "01110", "00001", "00001", "11110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
    "A": ("01110", "10001", "10001", "11111", "10001", "10001", "10001"),
    "B": ("11110", "10001", "10001", "11110", "10001", "10001", "11110"),
    "C": ("01110", "10001", "10000", "10000", "10000", "10001", "01110"),
    "D": ("11110", "10001", "10001", "10001", "10001", "10001", "11110"),
    "E": ("11111", "10000", "10000", "11110", "10000", "10000", "11111"),
    "S": ("01111", "10000", "10000", "01110", "00001", "00001", "11110"),
}
GLYPH_WIDTH = 5
GLYPH_HEIGHT = 7


# Drawing


@dataclass(frozen=True)
class PlacedShape:
    """A flat shape: ``x`` and ``y`` are its centre and ``size`` its width and height in pixels."""

    kind: str
    colour: str
    x: int
    y: int
    size: int

    @property
    def description(self) -> str:
        return f"{self.colour} {self.kind}"


def new_canvas(width: int, height: int) -> Image.Image:
    """Create a white palette image that uses the demo palette."""
    image = Image.new("P", (width, height), _PALETTE_INDEX["white"])
    image.putpalette([channel for rgb in PALETTE.values() for channel in rgb])
    return image


def draw_shape(draw: ImageDraw.ImageDraw, shape: PlacedShape) -> None:
    """Draw a filled shape without anti-aliasing. A triangle points upward."""
    left = shape.x - shape.size // 2
    top = shape.y - shape.size // 2
    right = left + shape.size - 1
    bottom = top + shape.size - 1
    fill = _PALETTE_INDEX[shape.colour]
    if shape.kind == "circle":
        draw.ellipse((left, top, right, bottom), fill=fill)
    elif shape.kind == "square":
        draw.rectangle((left, top, right, bottom), fill=fill)
    elif shape.kind == "triangle":
        draw.polygon([(shape.x, top), (right, bottom), (left, bottom)], fill=fill)
    else:
        raise ValueError(f"invalid shape kind {shape.kind!r}: expected one of {KINDS}")


def draw_text(
    draw: ImageDraw.ImageDraw, text: str, left: int, top: int, scale: int, colour: str
) -> None:
    """Draw ``text`` in the bitmap font with its top-left corner at (left, top)."""
    fill = _PALETTE_INDEX[colour]
    for offset, character in enumerate(text):
        glyph_left = left + offset * (GLYPH_WIDTH + 1) * scale
        for row, bits in enumerate(_GLYPHS[character]):
            for column, bit in enumerate(bits):
                if bit == "1":
                    x = glyph_left + column * scale
                    y = top + row * scale
                    draw.rectangle((x, y, x + scale - 1, y + scale - 1), fill=fill)


def text_width(text: str, scale: int) -> int:
    return (len(text) * (GLYPH_WIDTH + 1) - 1) * scale


def render_scene(shapes: Sequence[PlacedShape], width: int, height: int) -> Image.Image:
    image = new_canvas(width, height)
    draw = ImageDraw.Draw(image)
    for shape in shapes:
        draw_shape(draw, shape)
    return image


def save_png(image: Image.Image, path: Path) -> None:
    """Save a PNG with fixed settings and no metadata chunks, so equal images give equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=True)


def write_json(data: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    path.write_bytes(text.encode("utf-8"))


# UEG questions


_COLOUR_PATTERN = "(" + "|".join(COLOURS) + ")"
_KIND_PATTERN = "(" + "|".join(KINDS) + ")"
_COUNT_QUESTION = re.compile(
    rf"Are there exactly (\d+) {_COLOUR_PATTERN} {_KIND_PATTERN}s in the image\?"
)
_PRESENCE_QUESTION = re.compile(rf"Is there a {_COLOUR_PATTERN} {_KIND_PATTERN} in the image\?")
_RELATION_QUESTION = re.compile(
    rf"Is the {_COLOUR_PATTERN} {_KIND_PATTERN} (to the left of|above) "
    rf"the {_COLOUR_PATTERN} {_KIND_PATTERN}\?"
)
_BACKGROUND_QUESTION = "Is the background white?"


@dataclass(frozen=True)
class Question:
    """A parsed UEG question. ``form`` is count, presence, left_of, above or background."""

    form: str
    colour: str = ""
    kind: str = ""
    number: int = 0
    other_colour: str = ""
    other_kind: str = ""


def parse_question(text: str) -> Question:
    """Parse a UEG question of the demo grammar; raise ValueError for any other text."""
    if text == _BACKGROUND_QUESTION:
        return Question("background")
    if match := _COUNT_QUESTION.fullmatch(text):
        return Question("count", match[2], match[3], number=int(match[1]))
    if match := _PRESENCE_QUESTION.fullmatch(text):
        return Question("presence", match[1], match[2])
    if match := _RELATION_QUESTION.fullmatch(text):
        form = "left_of" if match[3] == "to the left of" else "above"
        return Question(form, match[1], match[2], other_colour=match[4], other_kind=match[5])
    raise ValueError(f"question does not follow the demo grammar: {text!r}")


def evaluate_question(question: Question, shapes: Sequence[PlacedShape]) -> str:
    """Return "yes" or "no" for ``question`` on a white picture that contains ``shapes``.

    A left_of or above question is "yes" only when each of its two shapes occurs exactly once and
    the centre of the first is left of, or higher than, the centre of the second.
    """
    if question.form == "background":
        return "yes"
    first = [s for s in shapes if s.colour == question.colour and s.kind == question.kind]
    if question.form == "count":
        return "yes" if len(first) == question.number else "no"
    if question.form == "presence":
        return "yes" if first else "no"
    second = [
        s for s in shapes if s.colour == question.other_colour and s.kind == question.other_kind
    ]
    if len(first) != 1 or len(second) != 1:
        return "no"
    if question.form == "left_of":
        return "yes" if first[0].x < second[0].x else "no"
    return "yes" if first[0].y < second[0].y else "no"


# UEG tasks

UEG_CANVAS = 400
CODE_SHAPE_SIZE = 40
_PROMPT_SUFFIX = " Use flat, clearly separated shapes on a plain white background."
_CODE_PROMPT = (
    "The function shape(kind, colour, x, y) draws a flat shape of the given kind (circle, square "
    f"or triangle) and colour, about {CODE_SHAPE_SIZE} pixels across, centred at pixel (x, y) of a "
    f"{UEG_CANVAS} x {UEG_CANVAS} white canvas. The origin is the top-left corner and y grows "
    "downward. Draw the image that this Python code produces:\n\n"
)
STEP_PROMPT_TEMPLATE = (
    "Rewrite the request below as an explicit image-generation prompt. First work out any "
    "knowledge or reasoning that the request needs, then state every shape with its colour, number "
    "and position, so that the image can be drawn without further reasoning. Reply with the "
    "rewritten prompt only.\n\nRequest: {prompt}"
)


@dataclass(frozen=True)
class UegTask:
    """One UEG item: the prompt, its reference scene, and yes/no questions checked on that scene.

    ``explicit_prompt`` is a rewrite of the prompt that needs no reasoning. It serves as the
    ``response`` of the UEG_step reference baseline.
    """

    task_type: str
    subtask: str
    prompt: str
    explicit_prompt: str
    scene: tuple[PlacedShape, ...]
    questions: tuple[tuple[str, str], ...]


def _rows(*groups: tuple[int, str, str], size: int = 36) -> tuple[PlacedShape, ...]:
    """Lay out groups of (count, colour, kind) in centred rows of at most six shapes.

    Each group starts a new row, so the shapes of a group stay together.
    """
    rows: list[list[tuple[str, str]]] = []
    for count, colour, kind in groups:
        members = [(colour, kind)] * count
        for start in range(0, count, 6):
            rows.append(members[start : start + 6])
    spacing, row_height = 60, 70
    top = UEG_CANVAS // 2 - (len(rows) - 1) * row_height // 2
    shapes: list[PlacedShape] = []
    for row_number, row in enumerate(rows):
        left = UEG_CANVAS // 2 - (len(row) - 1) * spacing // 2
        for column, (colour, kind) in enumerate(row):
            x = left + column * spacing
            shapes.append(PlacedShape(kind, colour, x, top + row_number * row_height, size))
    return tuple(shapes)


def _at(kind: str, colour: str, x: int, y: int) -> PlacedShape:
    return PlacedShape(kind, colour, x, y, 60)


def run_drawing_code(code: str) -> tuple[PlacedShape, ...]:
    """Run a code_to_image snippet and return the shapes that its ``shape`` calls draw."""
    shapes: list[PlacedShape] = []

    def shape(kind: str, colour: str, x: int, y: int) -> None:
        if kind not in KINDS or colour not in COLOURS:
            raise ValueError(f"snippet draws an unsupported shape: {colour} {kind}")
        shapes.append(PlacedShape(kind, colour, x, y, CODE_SHAPE_SIZE))

    namespace: dict[str, object] = {"__builtins__": {"range": range}, "shape": shape}
    # The snippets are constants of this module, so running them is safe.
    exec(code, namespace)  # noqa: S102
    return tuple(shapes)


def _task(
    task_type: str,
    subtask: str,
    prompt: str,
    explicit_prompt: str,
    scene: tuple[PlacedShape, ...],
    *questions: tuple[str, str],
) -> UegTask:
    return UegTask(task_type, subtask, prompt + _PROMPT_SUFFIX, explicit_prompt, scene, questions)


def _code_task(
    subtask: str, code: str, explicit_prompt: str, *questions: tuple[str, str]
) -> UegTask:
    prompt = _CODE_PROMPT + code
    return UegTask(
        "code_to_image", subtask, prompt, explicit_prompt, run_drawing_code(code), questions
    )


def _world_knowledge_tasks() -> list[UegTask]:
    category = "world_knowledge"
    return [
        _task(
            category,
            "animal_anatomy",
            "Draw as many red circles as a spider has legs.",
            "Draw 8 red circles.",
            _rows((8, "red", "circle")),
            ("Are there exactly 8 red circles in the image?", "yes"),
            ("Are there exactly 6 red circles in the image?", "no"),
        ),
        _task(
            category,
            "animal_anatomy",
            "Draw one blue square for each leg of an ant.",
            "Draw 6 blue squares.",
            _rows((6, "blue", "square")),
            ("Are there exactly 6 blue squares in the image?", "yes"),
            ("Are there exactly 8 blue squares in the image?", "no"),
            (_BACKGROUND_QUESTION, "yes"),
        ),
        _task(
            category,
            "everyday_objects",
            "Draw as many green triangles as a tricycle has wheels.",
            "Draw 3 green triangles.",
            _rows((3, "green", "triangle")),
            ("Are there exactly 3 green triangles in the image?", "yes"),
            ("Are there exactly 2 green triangles in the image?", "no"),
        ),
        _task(
            category,
            "everyday_objects",
            "Draw a circle in the colour of a ripe banana's peel, and to its left a square in the "
            "colour of a fresh cucumber's skin.",
            "Draw a green square on the left and a yellow circle on the right.",
            (_at("square", "green", 120, 200), _at("circle", "yellow", 280, 200)),
            ("Is there a yellow circle in the image?", "yes"),
            ("Is the green square to the left of the yellow circle?", "yes"),
            ("Is there a yellow square in the image?", "no"),
        ),
        _task(
            category,
            "calendar_facts",
            "Draw as many black squares as there are months whose English names begin with the "
            "letter J.",
            "Draw 3 black squares.",
            _rows((3, "black", "square")),
            ("Are there exactly 3 black squares in the image?", "yes"),
            ("Are there exactly 2 black squares in the image?", "no"),
        ),
    ]


def _commonsense_tasks() -> list[UegTask]:
    category = "commonsense_reasoning"
    return [
        _task(
            category,
            "physical_laws",
            "A red circle is a helium balloon and a blue circle is a stone. Both are let go at the "
            "same height in a room. Draw where they are a few seconds later, one at the ceiling "
            "and one on the floor.",
            "Draw a red circle near the top of the image and a blue circle near the bottom.",
            (_at("circle", "red", 200, 70), _at("circle", "blue", 200, 330)),
            ("Is the red circle above the blue circle?", "yes"),
            ("Is the blue circle above the red circle?", "no"),
        ),
        _task(
            category,
            "physical_laws",
            "Three boxes are stacked on the floor: a red square, a blue square and a green square. "
            "The green box was put down first and the red box last. Draw the stack.",
            "Draw a vertical stack of three squares: red at the top, blue in the middle and green "
            "at the bottom.",
            (
                _at("square", "red", 200, 80),
                _at("square", "blue", 200, 200),
                _at("square", "green", 200, 320),
            ),
            ("Is the red square above the green square?", "yes"),
            ("Is the green square above the blue square?", "no"),
        ),
        _task(
            category,
            "everyday_conventions",
            "An English sentence has three words, drawn as shapes: the first word is a red square, "
            "the second a green circle and the last a blue triangle. Draw the sentence on one line "
            "the way it is read.",
            "Draw in one row from left to right: a red square, a green circle, a blue triangle.",
            (
                _at("square", "red", 80, 200),
                _at("circle", "green", 200, 200),
                _at("triangle", "blue", 320, 200),
            ),
            ("Is the red square to the left of the blue triangle?", "yes"),
            ("Is the blue triangle to the left of the green circle?", "no"),
        ),
        _task(
            category,
            "everyday_conventions",
            "On a clock face, draw a black circle where the number 12 is and a blue triangle where "
            "the number 9 is.",
            "Draw a black circle at the top centre and a blue triangle at the middle of the left "
            "edge.",
            (_at("circle", "black", 200, 70), _at("triangle", "blue", 70, 200)),
            ("Is the blue triangle to the left of the black circle?", "yes"),
            ("Is the blue triangle above the black circle?", "no"),
        ),
        _task(
            category,
            "human_activities",
            "Draw one green circle for each player on one side of a tennis doubles match.",
            "Draw 2 green circles.",
            _rows((2, "green", "circle")),
            ("Are there exactly 2 green circles in the image?", "yes"),
            ("Are there exactly 4 green circles in the image?", "no"),
        ),
    ]


def _mathematical_tasks() -> list[UegTask]:
    category = "mathematical_reasoning"
    return [
        _task(
            category,
            "arithmetic",
            "Draw blue squares equal in number to 3 + 4 x 2 minus 6.",
            "Draw 5 blue squares.",
            _rows((5, "blue", "square")),
            ("Are there exactly 5 blue squares in the image?", "yes"),
            ("Are there exactly 8 blue squares in the image?", "no"),
        ),
        _task(
            category,
            "arithmetic",
            "Draw as many green circles as the result of 24 / 4 - 2.",
            "Draw 4 green circles.",
            _rows((4, "green", "circle")),
            ("Are there exactly 4 green circles in the image?", "yes"),
            ("Are there exactly 12 green circles in the image?", "no"),
        ),
        _task(
            category,
            "proportion",
            "Draw 9 shapes in total, red circles and yellow triangles, with twice as many red "
            "circles as yellow triangles.",
            "Draw 6 red circles and 3 yellow triangles.",
            _rows((6, "red", "circle"), (3, "yellow", "triangle")),
            ("Are there exactly 6 red circles in the image?", "yes"),
            ("Are there exactly 3 yellow triangles in the image?", "yes"),
        ),
        _task(
            category,
            "proportion",
            "Draw 8 circles, some red and the rest blue, so that a circle picked at random is blue "
            "with probability 1/4.",
            "Draw 6 red circles and 2 blue circles.",
            _rows((6, "red", "circle"), (2, "blue", "circle")),
            ("Are there exactly 2 blue circles in the image?", "yes"),
            ("Are there exactly 6 red circles in the image?", "yes"),
            ("Are there exactly 4 blue circles in the image?", "no"),
        ),
        _task(
            category,
            "constraint_solving",
            "Draw 7 shapes, only black squares and blue circles, with 3 more black squares than "
            "blue circles.",
            "Draw 5 black squares and 2 blue circles.",
            _rows((5, "black", "square"), (2, "blue", "circle")),
            ("Are there exactly 5 black squares in the image?", "yes"),
            ("Are there exactly 2 blue circles in the image?", "yes"),
        ),
    ]


def _logical_tasks() -> list[UegTask]:
    category = "logical_reasoning"
    return [
        _task(
            category,
            "colour_deduction",
            "A single triangle is coloured red, green or blue. It is not red. If it were green, "
            "the picture would also contain a circle, and the picture contains no circle. Draw the "
            "triangle.",
            "Draw one blue triangle.",
            (_at("triangle", "blue", 200, 200),),
            ("Is there a blue triangle in the image?", "yes"),
            ("Is there a green triangle in the image?", "no"),
        ),
        _task(
            category,
            "colour_deduction",
            "Three squares stand in a row and are coloured red, yellow and black, one colour each. "
            "The middle square is yellow. The left square is not black. Draw the row.",
            "Draw three squares in a row from left to right: red, yellow, black.",
            (
                _at("square", "red", 80, 200),
                _at("square", "yellow", 200, 200),
                _at("square", "black", 320, 200),
            ),
            ("Is the red square to the left of the black square?", "yes"),
            ("Is the black square to the left of the yellow square?", "no"),
        ),
        _task(
            category,
            "ordering",
            "Draw three circles in a row: the green circle is to the right of the blue circle, and "
            "the red circle is to the left of the blue circle.",
            "Draw three circles in a row from left to right: red, blue, green.",
            (
                _at("circle", "red", 80, 200),
                _at("circle", "blue", 200, 200),
                _at("circle", "green", 320, 200),
            ),
            ("Is the red circle to the left of the green circle?", "yes"),
            ("Is the green circle to the left of the blue circle?", "no"),
        ),
        _task(
            category,
            "ordering",
            "Draw three shapes in a column: the black square is below the yellow circle, and the "
            "yellow circle is below the red triangle.",
            "Draw a column of three shapes from top to bottom: a red triangle, a yellow circle, a "
            "black square.",
            (
                _at("triangle", "red", 200, 80),
                _at("circle", "yellow", 200, 200),
                _at("square", "black", 200, 320),
            ),
            ("Is the red triangle above the black square?", "yes"),
            ("Is the black square above the yellow circle?", "no"),
        ),
        _task(
            category,
            "rule_application",
            "In this picture every circle is green and every square is blue. Draw two circles and "
            "one square.",
            "Draw 2 green circles and 1 blue square.",
            _rows((2, "green", "circle"), (1, "blue", "square")),
            ("Are there exactly 2 green circles in the image?", "yes"),
            ("Are there exactly 1 blue squares in the image?", "yes"),
            ("Is there a blue circle in the image?", "no"),
        ),
    ]


def _scientific_tasks() -> list[UegTask]:
    category = "scientific_reasoning"
    return [
        _task(
            category,
            "chemistry",
            "Draw a circle in the colour of the flame that table salt (sodium chloride) gives in a "
            "flame test.",
            "Draw one yellow circle.",
            (_at("circle", "yellow", 200, 200),),
            ("Is there a yellow circle in the image?", "yes"),
            ("Is there a red circle in the image?", "no"),
        ),
        _task(
            category,
            "chemistry",
            "Draw a square in the colour that blue litmus paper turns when it is dipped in lemon "
            "juice.",
            "Draw one red square.",
            (_at("square", "red", 200, 200),),
            ("Is there a red square in the image?", "yes"),
            ("Is there a blue square in the image?", "no"),
        ),
        _task(
            category,
            "biology",
            "Draw a triangle in the colour of the light that chlorophyll reflects, which gives "
            "most leaves their colour.",
            "Draw one green triangle.",
            (_at("triangle", "green", 200, 200),),
            ("Is there a green triangle in the image?", "yes"),
            ("Is there a yellow triangle in the image?", "no"),
        ),
        _task(
            category,
            "biology",
            "Draw as many black circles as there are chambers in a human heart.",
            "Draw 4 black circles.",
            _rows((4, "black", "circle")),
            ("Are there exactly 4 black circles in the image?", "yes"),
            ("Are there exactly 2 black circles in the image?", "no"),
        ),
        _task(
            category,
            "physics",
            "A yellow square is a block of pine wood and a black square is a block of iron of the "
            "same size. Both are dropped into a deep tank of water. Draw where each block ends up, "
            "one at the surface and one on the bottom.",
            "Draw a yellow square near the top of the image and a black square near the bottom.",
            (_at("square", "yellow", 200, 80), _at("square", "black", 200, 320)),
            ("Is the yellow square above the black square?", "yes"),
            ("Is the black square above the yellow square?", "no"),
        ),
    ]


def _code_tasks() -> list[UegTask]:
    return [
        _code_task(
            "loops",
            'for i in range(4):\n    shape("circle", "red", 80 + 80 * i, 200)\n',
            "Draw 4 red circles in a row.",
            ("Are there exactly 4 red circles in the image?", "yes"),
            ("Are there exactly 3 red circles in the image?", "no"),
        ),
        _code_task(
            "loops",
            "for i in range(6):\n"
            '    colour = "blue" if i % 2 == 0 else "yellow"\n'
            '    shape("square", colour, 50 + 60 * i, 200)\n',
            "Draw a row of 6 squares alternating blue and yellow, starting with blue on the left.",
            ("Are there exactly 3 blue squares in the image?", "yes"),
            ("Are there exactly 3 yellow squares in the image?", "yes"),
            ("Are there exactly 6 blue squares in the image?", "no"),
        ),
        _code_task(
            "conditionals",
            "x = 7\n"
            "if x > 10:\n"
            '    shape("triangle", "green", 200, 200)\n'
            "else:\n"
            '    shape("triangle", "black", 200, 200)\n',
            "Draw one black triangle in the centre.",
            ("Is there a black triangle in the image?", "yes"),
            ("Is there a green triangle in the image?", "no"),
        ),
        _code_task(
            "conditionals",
            "for n in range(1, 6):\n"
            "    if n % 2 == 1:\n"
            '        shape("triangle", "green", 70 * n, 200)\n',
            "Draw 3 green triangles in a row.",
            ("Are there exactly 3 green triangles in the image?", "yes"),
            ("Are there exactly 5 green triangles in the image?", "no"),
        ),
        _code_task(
            "coordinates",
            'shape("triangle", "yellow", 200, 320)\nshape("circle", "green", 200, 80)\n',
            "Draw a green circle near the top centre and a yellow triangle near the bottom centre.",
            ("Is the green circle above the yellow triangle?", "yes"),
            ("Is the yellow triangle above the green circle?", "no"),
            (_BACKGROUND_QUESTION, "yes"),
        ),
    ]


def ueg_tasks() -> list[UegTask]:
    """Return the 30 UEG tasks in file order, after checking every answer on its scene."""
    tasks = (
        _world_knowledge_tasks()
        + _commonsense_tasks()
        + _mathematical_tasks()
        + _logical_tasks()
        + _scientific_tasks()
        + _code_tasks()
    )
    for index, task in enumerate(tasks):
        if not 1 <= len(task.questions) <= 3:
            raise ValueError(f"UEG item {index} has {len(task.questions)} questions; expected 1-3")
        for text, answer in task.questions:
            computed = evaluate_question(parse_question(text), task.scene)
            if computed != answer:
                raise ValueError(
                    f"UEG item {index}: {text!r} is stated as {answer!r} but the scene gives "
                    f"{computed!r}"
                )
    return tasks


def _ueg_records(tasks: Sequence[UegTask]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    direct: list[dict[str, Any]] = []
    step: list[dict[str, Any]] = []
    for index, task in enumerate(tasks):
        questions = [{"question": text, "answer": answer} for text, answer in task.questions]
        direct.append(
            {
                "index": index,
                "task_type": task.task_type,
                "subtask": task.subtask,
                "prompt": task.prompt,
                "question_list": questions,
            }
        )
        step.append(
            {
                "index": index,
                "task_type": task.task_type,
                "subtask": task.subtask,
                "new_prompt": STEP_PROMPT_TEMPLATE.format(prompt=task.prompt),
                "question_list": [dict(question) for question in questions],
            }
        )
    return direct, step


# GEU puzzles

Cell = tuple[int, int]


@dataclass(frozen=True)
class ReconstructionDetail:
    """A jigsaw: shuffled position ``p`` shows patch ``permutation[p]`` of ``original``.

    ``cells`` lists the (colour, kind) of the shape in each patch of the original, in reading order.
    """

    grid: int
    cells: tuple[tuple[str, str], ...]
    permutation: tuple[int, ...]
    original: Image.Image


@dataclass(frozen=True)
class TrackingDetail:
    """A row of (colour, kind) shapes before and after the listed steps."""

    initial: tuple[tuple[str, str], ...]
    steps: tuple[str, ...]
    final: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CountingDetail:
    """Every shape drawn in a counting image and the kind of shape to count."""

    shapes: tuple[PlacedShape, ...]
    colour: str
    kind: str
    small_only: bool


@dataclass(frozen=True)
class Maze:
    """A grid maze. ``passages`` contains each open pair of neighbouring cells, sorted."""

    rows: int
    cols: int
    passages: frozenset[tuple[Cell, Cell]]

    def is_open(self, first: Cell, second: Cell) -> bool:
        return (min(first, second), max(first, second)) in self.passages

    def neighbours(self, cell: Cell) -> list[Cell]:
        return [
            other
            for other in _grid_neighbours(cell, self.rows, self.cols)
            if self.is_open(cell, other)
        ]


@dataclass(frozen=True)
class MazeDetail:
    """A maze puzzle: the start S, the end E, the shortest path and the lettered cells."""

    maze: Maze
    start: Cell
    end: Cell
    path: tuple[Cell, ...]
    landmarks: tuple[tuple[str, Cell], ...]


PuzzleDetail = ReconstructionDetail | TrackingDetail | CountingDetail | MazeDetail


@dataclass(frozen=True)
class GeuPuzzle:
    """One GEU item with its input image and the data its answer was computed from.

    ``question`` is asked under the direct protocol. ``step_question`` is asked about the edited
    image under the stepwise protocol. It differs only where the edit already does part of the work.
    """

    index: int
    task_type: str
    subtask: str
    question: str
    step_question: str
    edit_prompt: str
    options: tuple[str, ...]
    answer: str
    image: Image.Image
    detail: PuzzleDetail

    @property
    def image_path(self) -> str:
        return f"images/geu_{self.index:04d}.png"

    @property
    def answer_text(self) -> str:
        return self.options[LETTERS.index(self.answer)]

    def evaluation_prompt(self, stepwise: bool) -> str:
        lines = [self.step_question if stepwise else self.question]
        lines += [f"{letter}. {text}" for letter, text in zip(LETTERS, self.options, strict=True)]
        lines.append("Answer with the option's letter only.")
        return "\n".join(lines)


class _Reroll(Exception):
    """Raised by a puzzle generator when its random draw gives an unusable puzzle."""


def _describe(shape: tuple[str, str]) -> str:
    return f"{shape[0]} {shape[1]}"


def _place_options(
    correct: str, distractors: Sequence[str], letter: str, rng: random.Random
) -> tuple[str, ...]:
    """Put ``correct`` at ``letter`` and the first three distinct distractors elsewhere."""
    chosen: list[str] = []
    for text in distractors:
        if text != correct and text not in chosen:
            chosen.append(text)
        if len(chosen) == 3:
            break
    if len(chosen) < 3:
        raise _Reroll
    rng.shuffle(chosen)
    position = LETTERS.index(letter)
    return (*chosen[:position], correct, *chosen[position:])


def _numeric_options(correct: int, letter: str, low: int, high: int) -> tuple[str, ...]:
    """Four consecutive numbers within [low, high] with ``correct`` at ``letter``."""
    first = correct - LETTERS.index(letter)
    if first < low or first + 3 > high:
        raise _Reroll
    return tuple(str(value) for value in range(first, first + 4))


def _generate(
    make: Callable[[random.Random], GeuPuzzle], rng: random.Random, attempts: int = 1000
) -> GeuPuzzle:
    for _ in range(attempts):
        try:
            return make(rng)
        except _Reroll:
            continue
    raise RuntimeError(f"no usable puzzle after {attempts} attempts; change the seed")


# GEU: mental reconstruction

RECONSTRUCTION_SIZE = 384
_RECONSTRUCTION_PLAN = (
    ("jigsaw_2x2", 2, "corner"),
    ("jigsaw_2x2", 2, "right_of"),
    ("jigsaw_3x3", 3, "corner"),
    ("jigsaw_3x3", 3, "centre"),
    ("jigsaw_3x3", 3, "below"),
)


def patch_box(position: int, grid: int, size: int) -> tuple[int, int, int, int]:
    """Return the (left, top, right, bottom) box of a patch, with exclusive right and bottom."""
    patch = size // grid
    row, column = divmod(position, grid)
    return column * patch, row * patch, (column + 1) * patch, (row + 1) * patch


def shuffle_patches(image: Image.Image, grid: int, permutation: Sequence[int]) -> Image.Image:
    """Return an image whose position ``p`` shows patch ``permutation[p]`` of ``image``."""
    shuffled = new_canvas(*image.size)
    for position, source in enumerate(permutation):
        box = patch_box(position, grid, image.size[0])
        shuffled.paste(image.crop(patch_box(source, grid, image.size[0])), box[:2])
    return shuffled


def _derangement(count: int, rng: random.Random) -> tuple[int, ...]:
    order = list(range(count))
    while True:
        rng.shuffle(order)
        if all(position != source for position, source in enumerate(order)):
            return tuple(order)


def _reconstruction_puzzle(
    index: int, subtask: str, grid: int, form: str, letter: str, rng: random.Random
) -> GeuPuzzle:
    cells = tuple(rng.sample(ALL_SHAPES, grid * grid))
    patch = RECONSTRUCTION_SIZE // grid
    original = new_canvas(RECONSTRUCTION_SIZE, RECONSTRUCTION_SIZE)
    draw = ImageDraw.Draw(original)
    for position, (colour, kind) in enumerate(cells):
        left, top, _, _ = patch_box(position, grid, RECONSTRUCTION_SIZE)
        centre_x, centre_y = left + patch // 2, top + patch // 2
        draw_shape(draw, PlacedShape(kind, colour, centre_x, centre_y, patch // 2))
        draw_text(draw, str(position + 1), left + 6, top + 6, 2, "grey")
    permutation = _derangement(grid * grid, rng)
    shown_at = {source: position for position, source in enumerate(permutation)}

    reference: int | None = None
    naive: int | None = None
    if form == "corner":
        corners = [
            ("top-left", 0),
            ("top-right", grid - 1),
            ("bottom-left", grid * (grid - 1)),
            ("bottom-right", grid * grid - 1),
        ]
        name, target = rng.choice(corners)
        where = f"in the {name} corner"
        naive = permutation[target]
    elif form == "centre":
        target = grid * grid // 2
        where = "in the centre"
        naive = permutation[target]
    else:
        if form == "right_of":
            reference = rng.choice([p for p in range(grid * grid) if p % grid < grid - 1])
            target = reference + 1
            relation = "directly to the right of"
            naive_position = shown_at[reference] + 1
            naive_fits = shown_at[reference] % grid < grid - 1
        else:
            reference = rng.choice(range(grid * (grid - 1)))
            target = reference + grid
            relation = "directly below"
            naive_position = shown_at[reference] + grid
            naive_fits = naive_position < grid * grid
        where = f"{relation} the {_describe(cells[reference])}"
        naive = permutation[naive_position] if naive_fits else None

    others = [p for p in range(grid * grid) if p not in (target, reference, naive)]
    rng.shuffle(others)
    absent = [shape for shape in ALL_SHAPES if shape not in cells]
    rng.shuffle(absent)
    distractors = [_describe(cells[p]) for p in ([naive] if naive is not None else []) + others]
    distractors += [_describe(shape) for shape in absent]
    options = _place_options(_describe(cells[target]), distractors, letter, rng)

    return GeuPuzzle(
        index=index,
        task_type="mental_reconstruction",
        subtask=subtask,
        question=(
            f"The image was cut into a {grid} x {grid} grid of equal patches, and the patches were "
            "shuffled. Each patch carries a small grey number that gives its position in the "
            "original image, counted in reading order from 1 at the top-left. After the patches "
            f"are put back in their original positions, which shape is {where}?"
        ),
        step_question=(
            f"The image shows a picture restored from a {grid} x {grid} grid of shuffled patches. "
            f"Which shape is {where}?"
        ),
        edit_prompt=(
            f"Restore the image. It was cut into a {grid} x {grid} grid of equal patches that were "
            "then shuffled. Move every patch back to the position given by its small grey number, "
            "counted in reading order from 1 at the top-left, and output the restored image."
        ),
        options=options,
        answer=letter,
        image=shuffle_patches(original, grid, permutation),
        detail=ReconstructionDetail(grid, cells, permutation, original),
    )


def _reconstruction_puzzles(first_index: int, letters: Sequence[str]) -> list[GeuPuzzle]:
    rng = random.Random(SEED + 1)
    puzzles = []
    for offset, (subtask, grid, form) in enumerate(_RECONSTRUCTION_PLAN):

        def make(
            rng: random.Random,
            offset: int = offset,
            subtask: str = subtask,
            grid: int = grid,
            form: str = form,
        ) -> GeuPuzzle:
            return _reconstruction_puzzle(
                first_index + offset, subtask, grid, form, letters[offset], rng
            )

        puzzles.append(_generate(make, rng))
    return puzzles


# GEU: mental tracking

TRACKING_SLOTS = 5
TRACKING_SLOT_WIDTH = 128
TRACKING_HEIGHT = 160
TRACKING_SHAPE_SIZE = 64
TRACKING_SHAPE_Y = 64
_TRACKING_PLAN = (
    ("swap_tracking", "shape_at"),
    ("swap_tracking", "position_of"),
    ("recolour_tracking", "count_colour"),
    ("recolour_tracking", "shape_at"),
    ("mixed_tracking", "position_of"),
)
_TRACKING_OPERATIONS = {
    "swap_tracking": ("swap_positions", "swap_named"),
    "recolour_tracking": ("recolour",),
    "mixed_tracking": ("swap_positions", "swap_named", "recolour"),
}


def apply_tracking_step(row: list[tuple[str, str, int]], operation: str, rng: random.Random) -> str:
    """Apply one random step of ``operation`` to ``row`` in place and return its instruction.

    Row entries are (colour, kind, identity), and the identity follows a shape through swaps.
    """
    if operation == "swap_positions":
        first, second = sorted(rng.sample(range(len(row)), 2))
        row[first], row[second] = row[second], row[first]
        return f"Swap the shapes at positions {first + 1} and {second + 1}."
    if operation == "swap_named":
        descriptions = [_describe(entry[:2]) for entry in row]
        unique = [p for p, text in enumerate(descriptions) if descriptions.count(text) == 1]
        if len(unique) < 2:
            raise _Reroll
        first, second = rng.sample(unique, 2)
        row[first], row[second] = row[second], row[first]
        return f"Swap the {descriptions[first]} and the {descriptions[second]}."
    position = rng.randrange(len(row))
    colour, kind, identity = row[position]
    new_colour = rng.choice([c for c in COLOURS if c != colour])
    row[position] = (new_colour, kind, identity)
    return f"Paint the shape at position {position + 1} {new_colour}."


def _tracking_image(row: Sequence[tuple[str, str]]) -> Image.Image:
    image = new_canvas(TRACKING_SLOTS * TRACKING_SLOT_WIDTH, TRACKING_HEIGHT)
    draw = ImageDraw.Draw(image)
    for position, (colour, kind) in enumerate(row):
        centre_x = position * TRACKING_SLOT_WIDTH + TRACKING_SLOT_WIDTH // 2
        draw_shape(draw, PlacedShape(kind, colour, centre_x, TRACKING_SHAPE_Y, TRACKING_SHAPE_SIZE))
        label = str(position + 1)
        draw_text(draw, label, centre_x - text_width(label, 3) // 2, 116, 3, "grey")
    return image


def _tracking_puzzle(
    index: int, subtask: str, form: str, letter: str, rng: random.Random
) -> GeuPuzzle:
    initial = [(*shape, identity) for identity, shape in enumerate(rng.sample(ALL_SHAPES, 5))]
    row = list(initial)
    step_count = 4 if subtask == "mixed_tracking" else 3
    steps = [
        apply_tracking_step(row, rng.choice(_TRACKING_OPERATIONS[subtask]), rng)
        for _ in range(step_count)
    ]
    # Painting one position twice would make the earlier paint step irrelevant.
    painted = [step.split()[5] for step in steps if step.startswith("Paint")]
    if len(set(painted)) != len(painted):
        raise _Reroll
    final_descriptions = [_describe(entry[:2]) for entry in row]
    initial_descriptions = [_describe(entry[:2]) for entry in initial]

    if form == "shape_at":
        position = rng.randrange(TRACKING_SLOTS)
        correct = final_descriptions[position]
        naive = initial_descriptions[position]
        if correct == naive:
            raise _Reroll
        pool = final_descriptions + initial_descriptions + [_describe(s) for s in ALL_SHAPES]
        rest = pool[:]
        rng.shuffle(rest)
        options = _place_options(correct, [naive, *rest], letter, rng)
        core = f"which shape is at position {position + 1}?"
    elif form == "position_of":
        candidates = [
            p
            for p, entry in enumerate(row)
            if final_descriptions.count(final_descriptions[p]) == 1
            and initial[entry[2]][:2] == entry[:2]
            and entry[2] != p
        ]
        if not candidates:
            raise _Reroll
        position = rng.choice(candidates)
        naive = str(row[position][2] + 1)
        rest = [str(p + 1) for p in range(TRACKING_SLOTS)]
        rng.shuffle(rest)
        options = _place_options(str(position + 1), [naive, *rest], letter, rng)
        core = f"at which position is the {final_descriptions[position]}?"
    else:
        colour = rng.choice(COLOURS)
        count = sum(1 for entry in row if entry[0] == colour)
        if count == sum(1 for entry in initial if entry[0] == colour):
            raise _Reroll
        options = _numeric_options(count, letter, 0, TRACKING_SLOTS)
        core = f"how many shapes are {colour}?"

    intro = "The image shows a row of five shapes at positions 1 to 5, numbered from left to right."
    numbered = "\n".join(f"{number}. {step}" for number, step in enumerate(steps, start=1))
    return GeuPuzzle(
        index=index,
        task_type="mental_tracking",
        subtask=subtask,
        question=f"{intro} Apply these steps in order:\n{numbered}\nAfter the last step, {core}",
        step_question=f"{intro} {core[0].upper()}{core[1:]}",
        edit_prompt=(
            "Apply these steps in order to the row of shapes in the image, keep the position "
            "numbers under the row, and output the row as it looks after the last step:\n"
            f"{numbered}"
        ),
        options=options,
        answer=letter,
        image=_tracking_image([entry[:2] for entry in initial]),
        detail=TrackingDetail(
            tuple((c, k) for c, k, _ in initial), tuple(steps), tuple((c, k) for c, k, _ in row)
        ),
    )


def _tracking_puzzles(first_index: int, letters: Sequence[str]) -> list[GeuPuzzle]:
    rng = random.Random(SEED + 2)
    puzzles = []
    for offset, (subtask, form) in enumerate(_TRACKING_PLAN):

        def make(
            rng: random.Random, offset: int = offset, subtask: str = subtask, form: str = form
        ) -> GeuPuzzle:
            return _tracking_puzzle(first_index + offset, subtask, form, letters[offset], rng)

        puzzles.append(_generate(make, rng))
    return puzzles


# GEU: attentional focusing

COUNTING_SIZE = 1024
COUNTING_CELL = 32
COUNTING_SMALL = 20
COUNTING_LARGE = 120
_COUNTING_BLOCK = 128
_COUNTING_PLAN = (
    "count_shape_kind",
    "count_shape_kind",
    "count_shape_kind",
    "count_small_among_large",
    "count_small_among_large",
)


def _counting_puzzle(index: int, subtask: str, letter: str, rng: random.Random) -> GeuPuzzle:
    colour, kind = rng.choice(ALL_SHAPES)
    small_only = subtask == "count_small_among_large"
    cells_per_side = COUNTING_SIZE // COUNTING_CELL
    occupied: set[tuple[int, int]] = set()
    shapes: list[PlacedShape] = []

    if small_only:
        blocks_per_side = COUNTING_SIZE // _COUNTING_BLOCK
        blocks = rng.sample(range(blocks_per_side * blocks_per_side), 4)
        large_targets = rng.randint(2, 3)
        other_colour = rng.choice([c for c in COLOURS if c != colour])
        for number, block in enumerate(blocks):
            block_row, block_column = divmod(block, blocks_per_side)
            large_colour = colour if number < large_targets else other_colour
            centre_x = block_column * _COUNTING_BLOCK + _COUNTING_BLOCK // 2
            centre_y = block_row * _COUNTING_BLOCK + _COUNTING_BLOCK // 2
            shapes.append(PlacedShape(kind, large_colour, centre_x, centre_y, COUNTING_LARGE))
            cells_per_block = _COUNTING_BLOCK // COUNTING_CELL
            for row in range(cells_per_block):
                for column in range(cells_per_block):
                    occupied.add(
                        (block_row * cells_per_block + row, block_column * cells_per_block + column)
                    )

    target_count = rng.randint(6, 14)
    same_colour = [(colour, k) for k in KINDS if k != kind]
    same_kind = [(c, kind) for c in COLOURS if c != colour]
    unrelated = [s for s in ALL_SHAPES if s[0] != colour and s[1] != kind]
    specs = [(colour, kind)] * target_count
    specs += [rng.choice(same_colour) for _ in range(rng.randint(10, 16))]
    specs += [rng.choice(same_kind) for _ in range(rng.randint(10, 16))]
    specs += [rng.choice(unrelated) for _ in range(rng.randint(40, 60))]
    free = [
        (row, column)
        for row in range(cells_per_side)
        for column in range(cells_per_side)
        if (row, column) not in occupied
    ]
    # Each small shape sits in its own 32-pixel cell, at most 4 pixels off the cell's centre, so
    # neighbouring shapes stay at least 4 pixels apart.
    for (shape_colour, shape_kind), (row, column) in zip(
        specs, rng.sample(free, len(specs)), strict=True
    ):
        centre_x = column * COUNTING_CELL + COUNTING_CELL // 2 + rng.randint(-4, 4)
        centre_y = row * COUNTING_CELL + COUNTING_CELL // 2 + rng.randint(-4, 4)
        shapes.append(PlacedShape(shape_kind, shape_colour, centre_x, centre_y, COUNTING_SMALL))

    counted = sum(
        1 for s in shapes if s.colour == colour and s.kind == kind and s.size == COUNTING_SMALL
    )
    options = _numeric_options(counted, letter, 0, 99)
    if small_only:
        question = f"How many small {colour} {kind}s are in the image? Do not count the large ones."
        edit_prompt = (
            f"Draw a thin frame around every small {colour} {kind} in the image and leave "
            "everything else unchanged."
        )
    else:
        question = f"How many {colour} {kind}s are in the image?"
        edit_prompt = (
            f"Draw a thin frame around every {colour} {kind} in the image and leave everything "
            "else unchanged."
        )
    return GeuPuzzle(
        index=index,
        task_type="attentional_focusing",
        subtask=subtask,
        question=question,
        step_question=question,
        edit_prompt=edit_prompt,
        options=options,
        answer=letter,
        image=render_scene(shapes, COUNTING_SIZE, COUNTING_SIZE),
        detail=CountingDetail(tuple(shapes), colour, kind, small_only),
    )


def _counting_puzzles(first_index: int, letters: Sequence[str]) -> list[GeuPuzzle]:
    rng = random.Random(SEED + 3)
    puzzles = []
    for offset, subtask in enumerate(_COUNTING_PLAN):

        def make(rng: random.Random, offset: int = offset, subtask: str = subtask) -> GeuPuzzle:
            return _counting_puzzle(first_index + offset, subtask, letters[offset], rng)

        puzzles.append(_generate(make, rng))
    return puzzles


# GEU: cognitive navigation

MAZE_CELL = 32
MAZE_MARGIN = 16
MAZE_WALL = 4
_MOVES: dict[str, Cell] = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
_MAZE_PLAN = (
    ("route_moves", 5),
    ("route_moves", 6),
    ("route_turns", 7),
    ("path_landmarks", 7),
    ("path_landmarks", 8),
)


def _grid_neighbours(cell: Cell, rows: int, cols: int) -> list[Cell]:
    row, column = cell
    candidates = [(row - 1, column), (row + 1, column), (row, column - 1), (row, column + 1)]
    return [(r, c) for r, c in candidates if 0 <= r < rows and 0 <= c < cols]


def generate_maze(rows: int, cols: int, rng: random.Random) -> Maze:
    """Generate a perfect maze (exactly one path between any two cells) by randomised DFS."""
    visited = {(0, 0)}
    stack = [(0, 0)]
    passages: set[tuple[Cell, Cell]] = set()
    while stack:
        cell = stack[-1]
        unvisited = [n for n in _grid_neighbours(cell, rows, cols) if n not in visited]
        if not unvisited:
            stack.pop()
            continue
        chosen = rng.choice(unvisited)
        passages.add((min(cell, chosen), max(cell, chosen)))
        visited.add(chosen)
        stack.append(chosen)
    return Maze(rows, cols, frozenset(passages))


def shortest_path(maze: Maze, start: Cell, end: Cell) -> tuple[Cell, ...]:
    """Return the cells of the shortest path from ``start`` to ``end``, found by BFS."""
    previous: dict[Cell, Cell | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell == end:
            break
        for neighbour in maze.neighbours(cell):
            if neighbour not in previous:
                previous[neighbour] = cell
                queue.append(neighbour)
    if end not in previous:
        raise ValueError(f"no path from {start} to {end}")
    path = [end]
    while (step := previous[path[-1]]) is not None:
        path.append(step)
    return tuple(reversed(path))


def route_runs(path: Sequence[Cell]) -> list[tuple[str, int]]:
    """Return the path as runs of (direction, number of moves)."""
    runs: list[tuple[str, int]] = []
    for (row, column), (next_row, next_column) in itertools.pairwise(path):
        direction = next(
            name
            for name, (dr, dc) in _MOVES.items()
            if (row + dr, column + dc) == (next_row, next_column)
        )
        if runs and runs[-1][0] == direction:
            runs[-1] = (direction, runs[-1][1] + 1)
        else:
            runs.append((direction, 1))
    return runs


def format_runs(runs: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{direction} {count}" for direction, count in runs)


def _merge_runs(runs: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    merged: list[tuple[str, int]] = []
    for direction, count in runs:
        if merged and merged[-1][0] == direction:
            merged[-1] = (direction, merged[-1][1] + count)
        else:
            merged.append((direction, count))
    return merged


def follows_walls(maze: Maze, start: Cell, end: Cell, runs: Sequence[tuple[str, int]]) -> bool:
    """Tell whether ``runs`` lead from ``start`` to ``end`` without crossing a wall."""
    cell = start
    for direction, count in runs:
        dr, dc = _MOVES[direction]
        for _ in range(count):
            following = (cell[0] + dr, cell[1] + dc)
            if not maze.is_open(cell, following):
                return False
            cell = following
    return cell == end


def _route_distractors(runs: Sequence[tuple[str, int]], rng: random.Random) -> list[str]:
    """Return wrong routes that resemble ``runs``: one changed length, one turn the other way, and
    two neighbouring runs in swapped order."""
    turn = {"up": "down", "down": "up", "left": "right", "right": "left"}
    transpose = {"up": "left", "left": "up", "down": "right", "right": "down"}
    candidates: list[list[tuple[str, int]]] = []
    for position, (direction, count) in enumerate(runs):
        for changed in (count - 1, count + 1):
            if changed > 0:
                candidates.append([*runs[:position], (direction, changed), *runs[position + 1 :]])
        candidates.append([*runs[:position], (turn[direction], count), *runs[position + 1 :]])
    for position in range(len(runs) - 1):
        candidates.append(
            [*runs[:position], runs[position + 1], runs[position], *runs[position + 2 :]]
        )
    candidates.append([(transpose[direction], count) for direction, count in runs])
    rng.shuffle(candidates)
    return [format_runs(_merge_runs(candidate)) for candidate in candidates]


def render_maze(
    maze: Maze, start: Cell, end: Cell, landmarks: Sequence[tuple[str, Cell]]
) -> Image.Image:
    """Draw the maze: black walls, S on a green cell, E on a red cell, and lettered cells."""
    width = 2 * MAZE_MARGIN + maze.cols * MAZE_CELL
    height = 2 * MAZE_MARGIN + maze.rows * MAZE_CELL
    image = new_canvas(width, height)
    draw = ImageDraw.Draw(image)
    half = MAZE_WALL // 2

    def cell_origin(cell: Cell) -> tuple[int, int]:
        return MAZE_MARGIN + cell[1] * MAZE_CELL, MAZE_MARGIN + cell[0] * MAZE_CELL

    for cell, colour in ((start, "green"), (end, "red")):
        left, top = cell_origin(cell)
        inset = MAZE_WALL
        draw.rectangle(
            (left + inset, top + inset, left + MAZE_CELL - inset - 1, top + MAZE_CELL - inset - 1),
            fill=_PALETTE_INDEX[colour],
        )

    def wall(x0: int, y0: int, x1: int, y1: int) -> None:
        draw.rectangle(
            (x0 - half, y0 - half, x1 + half - 1, y1 + half - 1), fill=_PALETTE_INDEX["black"]
        )

    for row in range(maze.rows):
        for column in range(maze.cols):
            left, top = cell_origin((row, column))
            right, bottom = left + MAZE_CELL, top + MAZE_CELL
            if row == 0:
                wall(left, top, right, top)
            if column == 0:
                wall(left, top, left, bottom)
            if row == maze.rows - 1 or not maze.is_open((row, column), (row + 1, column)):
                wall(left, bottom, right, bottom)
            if column == maze.cols - 1 or not maze.is_open((row, column), (row, column + 1)):
                wall(right, top, right, bottom)

    labels = [("S", start), ("E", end), *landmarks]
    for text, cell in labels:
        left, top = cell_origin(cell)
        draw_text(
            draw,
            text,
            left + (MAZE_CELL - text_width(text, 2)) // 2,
            top + (MAZE_CELL - GLYPH_HEIGHT * 2) // 2,
            2,
            "black",
        )
    return image


def _maze_puzzle(index: int, subtask: str, size: int, letter: str, rng: random.Random) -> GeuPuzzle:
    maze = generate_maze(size, size, rng)
    cells = [(row, column) for row in range(size) for column in range(size)]
    start, end = rng.sample(cells, 2)
    path = shortest_path(maze, start, end)
    runs = route_runs(path)
    landmarks: tuple[tuple[str, Cell], ...] = ()
    intro = (
        "The image shows a maze drawn on a grid of cells, with black walls. The start cell is "
        "marked S and the end cell is marked E. A move goes from one cell to a neighbouring cell "
        "without crossing a wall."
    )
    edit_prompt = (
        "Mark the shortest route from S to E on the maze by drawing a line through the centres of "
        "the cells it passes, and leave the walls and letters unchanged."
    )

    if subtask == "route_moves":
        if not 4 <= len(runs) <= 7:
            raise _Reroll
        wrong = [
            text
            for text in _route_distractors(runs, rng)
            if not follows_walls(maze, start, end, _parse_runs(text))
        ]
        options = _place_options(format_runs(runs), wrong, letter, rng)
        question = f"{intro} Which sequence of moves leads from S to E along the shortest route?"
    elif subtask == "route_turns":
        turns = len(runs) - 1
        if turns < 4:
            raise _Reroll
        options = _numeric_options(turns, letter, 0, 99)
        question = f"{intro} How many times does the shortest route from S to E change direction?"
    else:
        if len(path) < 8:
            raise _Reroll
        on_path = rng.choice(path[2:-2])
        off_path = rng.sample([cell for cell in cells if cell not in path], 3)
        other_letters = [other for other in LETTERS if other != letter]
        landmarks = tuple(sorted([(letter, on_path), *zip(other_letters, off_path, strict=True)]))
        options = tuple(f"the cell marked {option}" for option in LETTERS)
        question = (
            f"{intro} Four other cells are marked with the letters A to D. Which of them lies on "
            "the shortest route from S to E?"
        )

    return GeuPuzzle(
        index=index,
        task_type="cognitive_navigation",
        subtask=subtask,
        question=question,
        step_question=question,
        edit_prompt=edit_prompt,
        options=options,
        answer=letter,
        image=render_maze(maze, start, end, landmarks),
        detail=MazeDetail(maze, start, end, path, landmarks),
    )


def _parse_runs(text: str) -> list[tuple[str, int]]:
    runs = []
    for part in text.split(", "):
        direction, count = part.split(" ")
        runs.append((direction, int(count)))
    return runs


def _maze_puzzles(first_index: int, letters: Sequence[str]) -> list[GeuPuzzle]:
    rng = random.Random(SEED + 4)
    puzzles = []
    for offset, (subtask, size) in enumerate(_MAZE_PLAN):

        def make(
            rng: random.Random, offset: int = offset, subtask: str = subtask, size: int = size
        ) -> GeuPuzzle:
            return _maze_puzzle(first_index + offset, subtask, size, letters[offset], rng)

        puzzles.append(_generate(make, rng))
    return puzzles


def geu_puzzles() -> list[GeuPuzzle]:
    """Return the 20 GEU puzzles in file order, five per category.

    The correct letters are a seeded shuffle of five of each letter A to D.
    """
    letters = list(LETTERS) * ITEMS_PER_CATEGORY
    random.Random(SEED).shuffle(letters)
    makers = (_reconstruction_puzzles, _tracking_puzzles, _counting_puzzles, _maze_puzzles)
    puzzles: list[GeuPuzzle] = []
    for make in makers:
        first = len(puzzles)
        puzzles += make(first, letters[first : first + ITEMS_PER_CATEGORY])
    return puzzles


def _geu_records(
    puzzles: Sequence[GeuPuzzle],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    direct: list[dict[str, Any]] = []
    step: list[dict[str, Any]] = []
    for puzzle in puzzles:
        common = {"index": puzzle.index, "task_type": puzzle.task_type, "subtask": puzzle.subtask}
        direct.append(
            {
                **common,
                "image": puzzle.image_path,
                "evaluation_prompt": puzzle.evaluation_prompt(stepwise=False),
                "answer": puzzle.answer,
            }
        )
        step.append(
            {
                **common,
                "image": puzzle.image_path,
                "edit_prompt": puzzle.edit_prompt,
                "evaluation_prompt": puzzle.evaluation_prompt(stepwise=True),
                "answer": puzzle.answer,
            }
        )
    return direct, step


# Baselines

RESPONSE_STYLE_COUNT = 9


def styled_response(style: int, letter: str, option_text: str) -> str:
    """Write the choice ``letter`` in one of nine answer styles that an extractor must read.

    Style 7 gives only the option's text; styles 6 and 8 start with a capital letter from A to D
    that is not the answer.
    """
    styles = (
        letter,
        f"({letter})",
        f"Answer: {letter}",
        f"**{letter}**",
        f"\\boxed{{{letter}}}",
        f"The answer is {letter.lower()}.",
        f"Based on the image, the answer is {letter}.",
        option_text,
        f"Comparing the options, {option_text} fits, so the choice is {letter}.",
    )
    return styles[style % RESPONSE_STYLE_COUNT]


@dataclass(frozen=True)
class Baseline:
    """One baseline's letters for a GEU protocol and the response text written for each item."""

    name: str
    stepwise: bool
    letters: tuple[str, ...]
    responses: tuple[str, ...]


def _other_letter(letter: str, rng: random.Random) -> str:
    return rng.choice([other for other in LETTERS if other != letter])


def make_baselines(puzzles: Sequence[GeuPuzzle]) -> list[Baseline]:
    """Build the solver, random and partial baselines for GEU_direct and GEU_step.

    The partial baseline is right on 3, 2, 3 and 2 of the five items of the four categories under
    the direct protocol (50 %), and on 4 of 5 in every category under the stepwise one (80 %).
    """
    baselines: list[Baseline] = []
    for stepwise in (False, True):
        protocol_seed = SEED + (20 if stepwise else 10)
        solver_letters = tuple(puzzle.answer for puzzle in puzzles)
        solver_responses = tuple(
            styled_response(puzzle.index, puzzle.answer, puzzle.answer_text) for puzzle in puzzles
        )
        baselines.append(Baseline("solver", stepwise, solver_letters, solver_responses))

        random_rng = random.Random(protocol_seed + 1)
        random_letters = tuple(random_rng.choice(LETTERS) for _ in puzzles)
        baselines.append(Baseline("random", stepwise, random_letters, random_letters))

        partial_rng = random.Random(protocol_seed + 2)
        right_counts = (4, 4, 4, 4) if stepwise else (3, 2, 3, 2)
        partial_letters: list[str] = []
        for category, right_count in zip(GEU_CATEGORIES, right_counts, strict=True):
            members = [p for p in puzzles if p.task_type == category]
            right = set(partial_rng.sample(range(len(members)), right_count))
            for position, puzzle in enumerate(members):
                if position in right:
                    partial_letters.append(puzzle.answer)
                else:
                    partial_letters.append(_other_letter(puzzle.answer, partial_rng))
        baselines.append(
            Baseline("partial", stepwise, tuple(partial_letters), tuple(partial_letters))
        )
    return baselines


def accuracy_by_category(puzzles: Sequence[GeuPuzzle], letters: Sequence[str]) -> dict[str, float]:
    """Return the percentage of right letters in each GEU category."""
    result: dict[str, float] = {}
    for category in GEU_CATEGORIES:
        pairs = [
            (puzzle.answer, letter)
            for puzzle, letter in zip(puzzles, letters, strict=True)
            if puzzle.task_type == category
        ]
        result[category] = 100.0 * sum(1 for a, b in pairs if a == b) / len(pairs)
    return result


def baseline_file_name(baseline: Baseline) -> str:
    stem = "GEU_step" if baseline.stepwise else "GEU_direct"
    return f"{stem}.{baseline.name}.json"


def _baseline_records(
    records: Sequence[dict[str, Any]], baseline: Baseline
) -> list[dict[str, Any]]:
    result = []
    for record, response in zip(records, baseline.responses, strict=True):
        item = {key: value for key, value in record.items() if key != "answer"}
        if baseline.stepwise:
            item["edit_image"] = f"edits/geu_{record['index']:04d}.png"
        item["response"] = response
        result.append(item)
    return result


_BASELINE_MODELS = {
    "solver": "a model that always picks the right option, written in nine answer styles",
    "random": "a model that picks a seeded random letter",
    "partial": "a model that is right on a seeded subset: 50 % direct, 80 % stepwise",
}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _numbers(values: Sequence[int]) -> str:
    return ", ".join(str(value) for value in sorted(values))


def _ueg_partial_lines(
    tasks: Sequence[UegTask], partial_files: Sequence[UegPartialFile]
) -> list[str]:
    """Return the README section on the UEG partial files, with accuracy from their scenes."""
    header = "| file | model | " + " | ".join(UEG_CATEGORIES) + " | UEG score |"
    divider = "|" + "---|" * (len(UEG_CATEGORIES) + 3)
    rows = []
    failing_lines = []
    missing_lines = []
    for partial_file in partial_files:
        predictions = partial_file.predictions
        accuracy = ueg_accuracy_by_category(tasks, predictions)
        mean = sum(accuracy.values()) / len(accuracy)
        cells = " | ".join(f"{value:.0f}" for value in accuracy.values())
        missing = [p for p in predictions if p.scene is None]
        wrong = [
            p.index
            for task, p in zip(tasks, predictions, strict=True)
            if p.scene is not None and not item_passes(task, p.scene)
        ]
        if partial_file.stepwise:
            model = (
                "rewrites the prompt, then draws from its rewrite: "
                f"{_plural(len(wrong), 'rewrite')} wrong, "
                f"{_plural(len(missing), 'picture')} missing"
            )
        else:
            model = (
                f"draws end to end: {_plural(len(wrong), 'picture')} of a skipped reasoning step, "
                f"{_plural(len(missing), 'picture')} missing"
            )
        rows.append(f"| `{partial_file.file_name}` | {model} | {cells} | {mean:.1f} |")
        failing_lines.append(
            f"- `{partial_file.file_name}`: wrong pictures of items {_numbers(wrong)}; missing "
            f"picture of item {_numbers([p.index for p in missing])}."
        )
        missing_lines += [f"- `{p.image_path}` (item {p.index})" for p in missing]
    return [
        "### Partial model",
        "",
        "`UEG_direct.partial.json` and `UEG_step.partial.json` come from a unified model that",
        "has the knowledge but does not always use it. Each picture is drawn from a scene, which",
        "is either the item's reference scene or a mistake of skipped reasoning. Examples of such",
        "mistakes are 6 red circles for a spider's legs and 8 blue squares for 3 + 4 x 2 - 6 read",
        "left to right. The pictures are moved by a few pixels, so they differ from the reference",
        "pictures. In the stepwise file `response` is an explicit drawing prompt, and the picture",
        "follows it, also where it is wrong. Both files leave out `question_list`, as a real",
        "submission may.",
        "",
        "Item accuracy in percent per category, with five items per category, computed by the",
        "builder with `evaluate_question` on the scenes it drew. An item passes only when every",
        "question gets its expected answer, and an item without a picture scores 0. A judge that",
        "reads the shapes from the pixels correctly gives these numbers. The UEG score is the mean",
        "of the six categories.",
        "",
        header,
        divider,
        *rows,
        "",
        "Failing items, by index:",
        "",
        *failing_lines,
        "",
        "These pictures are named in the files but not shipped, so the service must score their",
        "items 0 and list them as missing:",
        "",
        *missing_lines,
        "",
        "The other pictures are in `ueg_partial_direct/` and `ueg_partial_step/`.",
        "",
    ]


def _baselines_readme(
    puzzles: Sequence[GeuPuzzle],
    baselines: Sequence[Baseline],
    tasks: Sequence[UegTask],
    ueg_partial: Sequence[UegPartialFile],
) -> str:
    header = "| file | model | " + " | ".join(GEU_CATEGORIES) + " | GEU score |"
    divider = "|" + "---|" * (len(GEU_CATEGORIES) + 3)
    rows = []
    for baseline in baselines:
        accuracy = accuracy_by_category(puzzles, baseline.letters)
        mean = sum(accuracy.values()) / len(accuracy)
        cells = " | ".join(f"{value:.0f}" for value in accuracy.values())
        rows.append(
            f"| `{baseline_file_name(baseline)}` | {_BASELINE_MODELS[baseline.name]} | {cells} "
            f"| {mean:.1f} |"
        )
    lines = [
        "# Demo baselines",
        "",
        "Prediction files for the demo benchmark in `../realunify-demo`, written by",
        "`python -m app.demo.build`. Each file is a benchmark file with the submitter's fields",
        "added. The GEU files leave out `answer`, because the service scores against its own copy.",
        "",
        "## GEU",
        "",
        "Accuracy in percent per category, with five items per category. The GEU score is the",
        "mean of the four categories. A uniform random guesser expects 25 in every category, and",
        "the numbers below are those of this seeded draw.",
        "",
        header,
        divider,
        *rows,
        "",
        "The solver's responses cycle through nine styles: a bare letter, `(C)`, `Answer: D`,",
        "`**A**`, `\\boxed{B}`, `The answer is c.`, `Based on the image, the answer is D.`, the",
        "option's text alone, and a sentence that names the option's text and then the letter.",
        "An extractor that takes the first capital letter from A to D misreads some of them.",
        "",
        "The `edit_image` paths of the GEU_step files point into `edits/`, which the demo does not",
        "contain.",
        "",
        "## UEG",
        "",
        "| file | model | expected score |",
        "|---|---|---|",
        "| `UEG_direct.reference.json` | reference pictures drawn from each item's intended scene "
        "| 100 in every category with a judge that reads the pictures correctly |",
        "| `UEG_step.reference.json` | the same pictures, with a rewritten prompt that needs no "
        "reasoning as `response` | 100 in every category with a judge that reads the pictures "
        "correctly |",
        "",
        "The reference pictures are in `ueg_images/`.",
        "",
        *_ueg_partial_lines(tasks, ueg_partial),
    ]
    return "\n".join(lines)


def ueg_reference_image_path(index: int) -> str:
    return f"ueg_images/ueg_{index:04d}.png"


# UEG partial baselines


@dataclass(frozen=True)
class UegMistake:
    """A typical error of a model that skips an item's reasoning step.

    ``explicit_prompt`` is the wrong rewrite that a stepwise model gives, and ``scene`` the picture
    drawn from it. ``ueg_mistakes`` checks that the scene fails at least one question of its item.
    """

    explicit_prompt: str
    scene: tuple[PlacedShape, ...]


def _code_mistake(explicit_prompt: str, code: str) -> UegMistake:
    return UegMistake(explicit_prompt, run_drawing_code(code))


def _ueg_mistake_table() -> dict[int, UegMistake]:
    """Return a typical mistake for every UEG item, keyed by the item's index."""
    return {
        # world_knowledge: a wrong fact.
        0: UegMistake("Draw 6 red circles.", _rows((6, "red", "circle"))),
        1: UegMistake("Draw 8 blue squares.", _rows((8, "blue", "square"))),
        2: UegMistake("Draw 2 green triangles.", _rows((2, "green", "triangle"))),
        3: UegMistake(
            "Draw a yellow circle on the left and a green square on the right.",
            (_at("circle", "yellow", 120, 200), _at("square", "green", 280, 200)),
        ),
        4: UegMistake("Draw 2 black squares.", _rows((2, "black", "square"))),
        # commonsense_reasoning: the objects in the order the prompt names them, or mirrored.
        5: UegMistake(
            "Draw a blue circle near the top of the image and a red circle near the bottom.",
            (_at("circle", "blue", 200, 70), _at("circle", "red", 200, 330)),
        ),
        6: UegMistake(
            "Draw a vertical stack of three squares: green at the top, blue in the middle and red "
            "at the bottom.",
            (
                _at("square", "green", 200, 80),
                _at("square", "blue", 200, 200),
                _at("square", "red", 200, 320),
            ),
        ),
        7: UegMistake(
            "Draw in one row from left to right: a blue triangle, a green circle, a red square.",
            (
                _at("triangle", "blue", 80, 200),
                _at("circle", "green", 200, 200),
                _at("square", "red", 320, 200),
            ),
        ),
        8: UegMistake(
            "Draw a black circle at the top centre and a blue triangle at the middle of the right "
            "edge.",
            (_at("circle", "black", 200, 70), _at("triangle", "blue", 330, 200)),
        ),
        9: UegMistake("Draw 4 green circles.", _rows((4, "green", "circle"))),
        # mathematical_reasoning: the computation done in the wrong order or inverted.
        10: UegMistake("Draw 8 blue squares.", _rows((8, "blue", "square"))),
        11: UegMistake("Draw 12 green circles.", _rows((12, "green", "circle"))),
        12: UegMistake(
            "Draw 3 red circles and 6 yellow triangles.",
            _rows((3, "red", "circle"), (6, "yellow", "triangle")),
        ),
        13: UegMistake(
            "Draw 4 red circles and 4 blue circles.",
            _rows((4, "red", "circle"), (4, "blue", "circle")),
        ),
        14: UegMistake(
            "Draw 3 black squares and 4 blue circles.",
            _rows((3, "black", "square"), (4, "blue", "circle")),
        ),
        # logical_reasoning: the first colour or order that the prompt suggests.
        15: UegMistake("Draw one green triangle.", (_at("triangle", "green", 200, 200),)),
        16: UegMistake(
            "Draw three squares in a row from left to right: black, yellow, red.",
            (
                _at("square", "black", 80, 200),
                _at("square", "yellow", 200, 200),
                _at("square", "red", 320, 200),
            ),
        ),
        17: UegMistake(
            "Draw three circles in a row from left to right: green, blue, red.",
            (
                _at("circle", "green", 80, 200),
                _at("circle", "blue", 200, 200),
                _at("circle", "red", 320, 200),
            ),
        ),
        18: UegMistake(
            "Draw a column of three shapes from top to bottom: a black square, a yellow circle, a "
            "red triangle.",
            (
                _at("square", "black", 200, 80),
                _at("circle", "yellow", 200, 200),
                _at("triangle", "red", 200, 320),
            ),
        ),
        19: UegMistake(
            "Draw 2 blue circles and 1 green square.",
            _rows((2, "blue", "circle"), (1, "green", "square")),
        ),
        # scientific_reasoning: a wrong fact.
        20: UegMistake("Draw one red circle.", (_at("circle", "red", 200, 200),)),
        21: UegMistake("Draw one blue square.", (_at("square", "blue", 200, 200),)),
        22: UegMistake("Draw one yellow triangle.", (_at("triangle", "yellow", 200, 200),)),
        23: UegMistake("Draw 2 black circles.", _rows((2, "black", "circle"))),
        24: UegMistake(
            "Draw a black square near the top of the image and a yellow square near the bottom.",
            (_at("square", "black", 200, 80), _at("square", "yellow", 200, 320)),
        ),
        # code_to_image: the snippet run with an off-by-one range, an ignored condition or an
        # upward y axis.
        25: _code_mistake(
            "Draw 3 red circles in a row.",
            'for i in range(3):\n    shape("circle", "red", 80 + 80 * i, 200)\n',
        ),
        26: _code_mistake(
            "Draw a row of 6 blue squares.",
            'for i in range(6):\n    shape("square", "blue", 50 + 60 * i, 200)\n',
        ),
        27: _code_mistake(
            "Draw one green triangle in the centre.", 'shape("triangle", "green", 200, 200)\n'
        ),
        28: _code_mistake(
            "Draw 5 green triangles in a row.",
            'for n in range(1, 6):\n    shape("triangle", "green", 70 * n, 200)\n',
        ),
        29: _code_mistake(
            "Draw a yellow triangle near the top centre and a green circle near the bottom centre.",
            'shape("triangle", "yellow", 200, 80)\nshape("circle", "green", 200, 320)\n',
        ),
    }


def item_passes(task: UegTask, scene: Sequence[PlacedShape]) -> bool:
    """Tell whether every question of ``task`` gets its expected answer on ``scene``."""
    return all(
        evaluate_question(parse_question(text), scene) == answer for text, answer in task.questions
    )


def ueg_mistakes(tasks: Sequence[UegTask]) -> list[UegMistake]:
    """Return one mistake per task in file order, after checking that each one fails its item."""
    table = _ueg_mistake_table()
    if sorted(table) != list(range(len(tasks))):
        raise ValueError(f"the mistake table covers items {sorted(table)}, not 0-{len(tasks) - 1}")
    for index, task in enumerate(tasks):
        if item_passes(task, table[index].scene):
            raise ValueError(f"the mistake for UEG item {index} passes every question")
    return [table[index] for index in range(len(tasks))]


# Items that the partial model gets wrong. A missing item names a picture that the demo does not
# ship, so it scores 0. A wrong item is drawn from the item's mistake. Under the direct protocol
# the model fails 3, 2, 3, 2, 3 and 2 items of the six categories (50 %). Under the stepwise
# protocol it fails 1 item per category (80 %): 5 wrong rewrites and 1 missing picture.
UEG_PARTIAL_DIRECT_WRONG = frozenset({0, 2, 3, 8, 10, 11, 13, 15, 19, 20, 22, 23, 26, 28})
UEG_PARTIAL_DIRECT_MISSING = frozenset({9})
UEG_PARTIAL_STEP_WRONG = frozenset({2, 8, 11, 19, 28})
UEG_PARTIAL_STEP_MISSING = frozenset({22})
UEG_PARTIAL_SHIFT = 12


@dataclass(frozen=True)
class UegPrediction:
    """One item of a UEG prediction file.

    ``scene`` is None when ``image_path`` names a picture that is not written. ``response`` is the
    rewritten prompt under the stepwise protocol and empty under the direct one.
    """

    index: int
    image_path: str
    scene: tuple[PlacedShape, ...] | None
    response: str


def _shift_scene(scene: Sequence[PlacedShape], dx: int, dy: int) -> tuple[PlacedShape, ...]:
    shifted = tuple(PlacedShape(s.kind, s.colour, s.x + dx, s.y + dy, s.size) for s in scene)
    for shape in shifted:
        half = shape.size // 2
        if not (half <= shape.x < UEG_CANVAS - half and half <= shape.y < UEG_CANVAS - half):
            raise ValueError(f"shifted shape leaves the canvas: {shape}")
    return shifted


def make_ueg_partial(tasks: Sequence[UegTask], stepwise: bool) -> list[UegPrediction]:
    """Build the partial model's UEG predictions for one protocol.

    Every written picture is drawn from a scene, either the item's reference scene or its mistake,
    moved by a seeded, non-zero offset of up to ``UEG_PARTIAL_SHIFT`` pixels on each axis, so that
    the pictures differ from the reference ones. Moving every shape by the same offset keeps every
    question's answer, and ``_shift_scene`` raises ValueError when a shape would leave the canvas.
    """
    mistakes = ueg_mistakes(tasks)
    if stepwise:
        folder, wrong, missing = (
            "ueg_partial_step",
            UEG_PARTIAL_STEP_WRONG,
            UEG_PARTIAL_STEP_MISSING,
        )
    else:
        folder, wrong = "ueg_partial_direct", UEG_PARTIAL_DIRECT_WRONG
        missing = UEG_PARTIAL_DIRECT_MISSING
    rng = random.Random(SEED + (40 if stepwise else 30))
    predictions = []
    for index, (task, mistake) in enumerate(zip(tasks, mistakes, strict=True)):
        dx = dy = 0
        while dx == dy == 0:
            dx = rng.randint(-UEG_PARTIAL_SHIFT, UEG_PARTIAL_SHIFT)
            dy = rng.randint(-UEG_PARTIAL_SHIFT, UEG_PARTIAL_SHIFT)
        # A missing picture in the stepwise file keeps the right rewrite, as when only the drawing
        # step fails.
        explicit_prompt = mistake.explicit_prompt if index in wrong else task.explicit_prompt
        response = explicit_prompt if stepwise else ""
        if index in missing:
            predictions.append(
                UegPrediction(index, f"{folder}/missing_{index:04d}.png", None, response)
            )
            continue
        scene = mistake.scene if index in wrong else task.scene
        predictions.append(
            UegPrediction(
                index, f"{folder}/ueg_{index:04d}.png", _shift_scene(scene, dx, dy), response
            )
        )
    return predictions


def ueg_accuracy_by_category(
    tasks: Sequence[UegTask], predictions: Sequence[UegPrediction]
) -> dict[str, float]:
    """Return the percentage of items per UEG category whose scene passes every question.

    An item without a picture scores 0, as the service scores a missing image.
    """
    result: dict[str, float] = {}
    for category in UEG_CATEGORIES:
        outcomes = [
            prediction.scene is not None and item_passes(task, prediction.scene)
            for task, prediction in zip(tasks, predictions, strict=True)
            if task.task_type == category
        ]
        result[category] = 100.0 * sum(outcomes) / len(outcomes)
    return result


@dataclass(frozen=True)
class UegPartialFile:
    """The partial model's predictions for one UEG protocol."""

    stepwise: bool
    predictions: tuple[UegPrediction, ...]

    @property
    def file_name(self) -> str:
        return "UEG_step.partial.json" if self.stepwise else "UEG_direct.partial.json"


def _ueg_partial_records(
    records: Sequence[dict[str, Any]], predictions: Sequence[UegPrediction], stepwise: bool
) -> list[dict[str, Any]]:
    """Return the benchmark records without ``question_list``, with the model's fields added."""
    result = []
    for record, prediction in zip(records, predictions, strict=True):
        item = {key: value for key, value in record.items() if key != "question_list"}
        if stepwise:
            item["response"] = prediction.response
        item["generated_image"] = prediction.image_path
        result.append(item)
    return result


# Output


def build_demo(out_dir: Path) -> None:
    """Write ``out_dir/realunify-demo`` (benchmark files and images) and ``out_dir/baselines``.

    Existing files with the same names are overwritten; other files are left in place.
    """
    benchmark = out_dir / BENCHMARK_DIR
    baselines_dir = out_dir / BASELINES_DIR

    tasks = ueg_tasks()
    ueg_direct, ueg_step = _ueg_records(tasks)
    write_json(ueg_direct, benchmark / "UEG_direct.json")
    write_json(ueg_step, benchmark / "UEG_step.json")

    puzzles = geu_puzzles()
    geu_direct, geu_step = _geu_records(puzzles)
    write_json(geu_direct, benchmark / "GEU_direct.json")
    write_json(geu_step, benchmark / "GEU_step.json")
    for puzzle in puzzles:
        save_png(puzzle.image, benchmark / puzzle.image_path)

    baselines = make_baselines(puzzles)
    for baseline in baselines:
        records = geu_step if baseline.stepwise else geu_direct
        write_json(
            _baseline_records(records, baseline), baselines_dir / baseline_file_name(baseline)
        )

    direct_reference = []
    step_reference = []
    for task, direct_item, step_item in zip(tasks, ueg_direct, ueg_step, strict=True):
        image_path = ueg_reference_image_path(direct_item["index"])
        save_png(render_scene(task.scene, UEG_CANVAS, UEG_CANVAS), baselines_dir / image_path)
        direct_reference.append({**direct_item, "generated_image": image_path})
        step_reference.append(
            {**step_item, "response": task.explicit_prompt, "generated_image": image_path}
        )
    write_json(direct_reference, baselines_dir / "UEG_direct.reference.json")
    write_json(step_reference, baselines_dir / "UEG_step.reference.json")

    ueg_partial: list[UegPartialFile] = []
    for stepwise, records in ((False, ueg_direct), (True, ueg_step)):
        predictions = make_ueg_partial(tasks, stepwise)
        for prediction in predictions:
            if prediction.scene is not None:
                image = render_scene(prediction.scene, UEG_CANVAS, UEG_CANVAS)
                save_png(image, baselines_dir / prediction.image_path)
        partial_file = UegPartialFile(stepwise, tuple(predictions))
        write_json(
            _ueg_partial_records(records, predictions, stepwise),
            baselines_dir / partial_file.file_name,
        )
        ueg_partial.append(partial_file)

    readme = _baselines_readme(puzzles, baselines, tasks, ueg_partial)
    (baselines_dir / "README.md").write_bytes(readme.encode("utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.demo.build",
        description="Write the RealUnify demo benchmark and its baseline prediction files.",
    )
    parser.add_argument(
        "out_dir",
        nargs="?",
        default=Path("demo"),
        type=Path,
        help="folder to write realunify-demo/ and baselines/ into (default: demo)",
    )
    arguments = parser.parse_args(argv)
    build_demo(arguments.out_dir)
    print(f"wrote {arguments.out_dir / BENCHMARK_DIR} and {arguments.out_dir / BASELINES_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
