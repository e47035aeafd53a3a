"""The grammar of each option's value: text (or a JSON scalar) in, a typed value out, or
`InvalidParameter` naming the option. Defaults and presets are `optimizer/options.py`'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from PIL import ImageColor

from contract.errors import EMPTY, InvalidParameter
from optimizer.geometry import Length, Margins, Roi, Size

Color = tuple[int, int, int, int]

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MARGIN_PX_MAX = 500
MARGIN_PERCENT_MAX = 50
SCALE_RANGE = (10, 100)
CANVAS_SIDE_MIN = 100
OPACITY_RANGE = (0, 100)
LENGTH = re.compile(r"([0-9]{1,6})(px|%)?", re.IGNORECASE)
CANVAS = re.compile(r"([0-9]{1,6})\s*[x×]\s*([0-9]{1,6})", re.IGNORECASE)
PERCENT = re.compile(r"([0-9]{1,3})%")
SHADOWS = ("none", "drop")
EDGES = ("keep", "decontaminate")


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if re.fullmatch(r"[+-]?[0-9]{1,9}", text) else None


def integer(
    values: Mapping[str, Any],
    name: str,
    low: int,
    high: int,
    default: int | None = None,
    label: str | None = None,
) -> Any:
    """`label` names the option in the error (default: "Max width" for `max_width`)."""
    value = values.get(name)
    if value is None:
        return default
    number = as_int(value)
    if number is None or not low <= number <= high:
        label = label or name.replace("_", " ").capitalize()
        raise InvalidParameter(f"{label} must be between {low}-{high}")
    return number


def boolean(values: Mapping[str, Any], name: str) -> bool:
    value = values.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InvalidParameter(f"{name} must be a boolean (true/false, 1/0, yes/no, on/off)")


def color(value: Any) -> Color | None:
    if value is None:
        return None
    text = str(value).strip()
    try:
        rgba = ImageColor.getrgb(text) if len(text) <= 64 else ()
        # Pillow passes functional notations through unchecked (rgb(300,0,0), hsl(0,0%,999%)).
        if not rgba or not all(0 <= channel <= 255 for channel in rgba):
            raise ValueError(text)
    except ValueError:
        raise InvalidParameter(
            f"bg_color must be #rgb, #rrggbb, #rrggbbaa or a CSS colour name; got '{text[:64]}'"
        ) from None
    return (*rgba, 255)[:4] if len(rgba) == 3 else rgba


def model_name(value: Any) -> str | None:
    if value is None:
        return None
    name = str(value).strip()
    if not MODEL_NAME.fullmatch(name):
        raise InvalidParameter(f"Invalid model name '{name[:64]}'")
    return name


def margins(value: Any) -> Margins:
    """1, 2 or 4 lengths in CSS order (all; top/bottom left/right; top right bottom left)."""
    if value is None:
        return Margins()
    text = str(value).strip()
    sides = [_margin_side(word, text) for word in text.split()]
    if len(sides) == 1:
        return Margins.all(sides[0])
    if len(sides) == 2:
        return Margins(sides[0], sides[1], sides[0], sides[1])
    if len(sides) == 4:
        return Margins(*sides)
    raise InvalidParameter(f"crop_margin takes 1, 2 or 4 values; got '{text[:64]}'")


def _margin_side(word: str, text: str) -> Length:
    length = _length(word)
    limit = MARGIN_PERCENT_MAX if length and length.percent else MARGIN_PX_MAX
    if length is None or length.value > limit:
        raise InvalidParameter(
            f"crop_margin values must be 0-{MARGIN_PX_MAX} px or 0-{MARGIN_PERCENT_MAX}%; "
            f"got '{text[:64]}'"
        )
    return length


def scale(value: Any) -> int | None:
    """`original` (None) or a share of the canvas in percent."""
    if value is None or _word(value) == "original":
        return None
    match = PERCENT.fullmatch(_word(value))
    low, high = SCALE_RANGE
    if match is None or not low <= int(match[1]) <= high:
        raise InvalidParameter(f"scale must be 'original' or {low}%-{high}%; got '{_shown(value)}'")
    return int(match[1])


def position(value: Any) -> tuple[int, int] | None:
    """`original` (None), `center`, `X%` (both axes) or `X% Y%`, in percent of the free room."""
    word = None if value is None else _word(value)
    if word in (None, "original"):
        return None
    if word == "center":
        return 50, 50
    matches = [PERCENT.fullmatch(part) for part in word.split()]
    shares = [int(match[1]) for match in matches if match and int(match[1]) <= 100]
    if len(shares) == len(matches) == 1:
        return shares[0], shares[0]
    if len(shares) == len(matches) == 2:
        return shares[0], shares[1]
    raise InvalidParameter(
        f"position must be 'original', 'center', 'X%' or 'X% Y%' (0-100); got '{_shown(value)}'"
    )


def canvas(value: Any, max_side: int) -> Size | None:
    if value is None:
        return None
    match = CANVAS.fullmatch(_word(value))
    size = (int(match[1]), int(match[2])) if match else None
    if size is None or not all(CANVAS_SIDE_MIN <= side <= max_side for side in size):
        raise InvalidParameter(
            f"canvas must be WxH, each side {CANVAS_SIDE_MIN}-{max_side}; got '{_shown(value)}'"
        )
    return size


def roi(value: Any) -> Roi | None:
    """x1 y1 x2 y2, each `Npx`, `N%` (0-100) or a bare 0: a non-empty box in that order."""
    if value is None:
        return None
    words = _word(value).split()
    lengths = [length for word in words if (length := _roi_length(word)) is not None]
    if len(lengths) != 4 or len(words) != 4:
        raise InvalidParameter(
            f"roi must be 'x1 y1 x2 y2', each Npx, N% (0-100) or 0; got '{_shown(value)}'"
        )
    region = Roi(*lengths)
    for low, high in ((region.left, region.right), (region.top, region.bottom)):
        if low.percent == high.percent and low.value >= high.value:
            raise InvalidParameter(
                f"roi is empty: x1 < x2 and y1 < y2; got '{_shown(value)}'",
                parameter="roi",
                problem=EMPTY,
            )
    return region


def _roi_length(word: str) -> Length | None:
    length = _length(word)
    if length is None or (length.percent and length.value > 100):
        return None
    if not length.percent and length.value and not word.endswith("px"):
        return None  # a bare number other than 0: pixels or percent? The unit is required.
    return length


def shadow(value: Any) -> bool:
    return _choice(value, "shadow", SHADOWS) == "drop"


def edges(value: Any) -> bool:
    """Whether the edges are decontaminated."""
    return _choice(value, "edges", EDGES) == "decontaminate"


def _choice(value: Any, name: str, words: tuple[str, ...]) -> str:
    word = words[0] if value is None else _word(value)
    if word not in words:
        raise InvalidParameter(f"{name} must be one of {', '.join(words)}; got '{_shown(value)}'")
    return word


def _length(word: str) -> Length | None:
    match = LENGTH.fullmatch(word)
    if match is None:
        return None
    return Length(int(match[1]), match[2] == "%")


def _word(value: Any) -> str:
    return " ".join(str(value).strip().lower().split())


def _shown(value: Any) -> str:
    return str(value).strip()[:64]
