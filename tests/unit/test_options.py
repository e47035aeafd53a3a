"""parse_options against the Options and Presets tables of docs/api.md."""

from __future__ import annotations

import pytest

from contract.errors import InvalidParameter
from optimizer.options import PRESETS, Margin, Margins, Options, OutputFormat, parse_options


def rejects(raw: dict) -> InvalidParameter:
    with pytest.raises(InvalidParameter) as caught:
        parse_options(raw)
    assert caught.value.code == "invalid_parameter"
    return caught.value


# --- format --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("PNG", OutputFormat.PNG),
        ("JPEG", OutputFormat.JPEG),
        ("WEBP", OutputFormat.WEBP),
        ("AVIF", OutputFormat.AVIF),
        ("JPG", OutputFormat.JPEG),
        ("png", OutputFormat.PNG),
        ("jpg", OutputFormat.JPEG),
        ("Jpeg", OutputFormat.JPEG),
        ("webp", OutputFormat.WEBP),
        ("aViF", OutputFormat.AVIF),
        (" webp ", OutputFormat.WEBP),
    ],
)
def test_format_names_aliases_and_case(given: str, expected: OutputFormat) -> None:
    assert parse_options({"format": given}).format is expected


def test_format_defaults_to_png() -> None:
    assert parse_options({}).format is OutputFormat.PNG


@pytest.mark.parametrize("given", ["GIF", "TIFF", "BMP", "jpe", "png8", "1"])
def test_unknown_format_is_rejected(given: str) -> None:
    rejects({"format": given})


@pytest.mark.parametrize(
    ("fmt", "extension", "mimetype"),
    [
        (OutputFormat.PNG, "png", "image/png"),
        (OutputFormat.JPEG, "jpg", "image/jpeg"),
        (OutputFormat.WEBP, "webp", "image/webp"),
        (OutputFormat.AVIF, "avif", "image/avif"),
    ],
)
def test_format_extension_and_mimetype(fmt: OutputFormat, extension: str, mimetype: str) -> None:
    assert fmt.extension == extension
    assert fmt.mimetype == mimetype


# --- quality -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "quality"), [("PNG", 100), ("JPEG", 80), ("JPG", 80), ("WEBP", 80), ("AVIF", 80)]
)
def test_default_quality_depends_on_format(fmt: str, quality: int) -> None:
    assert parse_options({"format": fmt}).quality == quality


def test_default_options_are_lossless_png() -> None:
    options = parse_options({})
    assert options.quality == 100
    assert options.lossless_png is True


@pytest.mark.parametrize("given", [10, 100, "10", "100", " 55 ", 95])
def test_quality_bounds_accepted(given: object) -> None:
    assert parse_options({"quality": given}).quality == int(str(given).strip())


@pytest.mark.parametrize(
    "given", [9, 101, "9", "101", "abc", "80.5", 80.5, True, False, "1e2", "-80", "0x50"]
)
def test_quality_out_of_range_or_not_integer_is_rejected(given: object) -> None:
    error = rejects({"quality": given})
    assert "10-100" in error.details


@pytest.mark.parametrize(("quality", "lossless"), [(94, False), (95, True), (100, True)])
def test_png_lossless_threshold_is_95(quality: int, lossless: bool) -> None:
    assert parse_options({"format": "PNG", "quality": quality}).lossless_png is lossless


def test_lossless_png_is_false_for_other_formats() -> None:
    assert parse_options({"format": "WEBP", "quality": 100}).lossless_png is False


# --- dimensions ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["max_width", "max_height"])
@pytest.mark.parametrize("given", [100, 4000, "100", "4000", 1234])
def test_dimension_bounds_accepted(name: str, given: object) -> None:
    assert getattr(parse_options({name: given}), name) == int(given)


@pytest.mark.parametrize("name", ["max_width", "max_height"])
@pytest.mark.parametrize("given", [99, 4001, 0, -200, "abc", "1200px", "12.5", True])
def test_dimension_out_of_bounds_rejected(name: str, given: object) -> None:
    rejects({name: given})


def test_box_is_width_then_height() -> None:
    assert parse_options({"max_width": 300, "max_height": 200}).box == (300, 200)
    assert parse_options({"max_height": 200}).box == (None, 200)
    assert parse_options({}).box == (None, None)


# --- presets -------------------------------------------------------------------------------

CONTRACT_PRESETS = {
    "web": (OutputFormat.JPEG, 80, 1200, 800),
    "social": (OutputFormat.PNG, 90, 1080, 1080),
    "email": (OutputFormat.JPEG, 75, 800, 600),
    "thumbnail": (OutputFormat.WEBP, 60, 300, 300),
    "mobile": (OutputFormat.WEBP, 70, 800, 600),
    "desktop": (OutputFormat.JPEG, 85, 1920, 1080),
    "archival": (OutputFormat.PNG, 95, None, None),
    "print": (OutputFormat.PNG, 95, None, None),
    "product": (OutputFormat.JPEG, 90, None, None),
}


def test_preset_table_has_exactly_the_contracts_presets() -> None:
    assert set(PRESETS) == set(CONTRACT_PRESETS)


@pytest.mark.parametrize(("name", "expected"), CONTRACT_PRESETS.items())
def test_each_preset_gives_the_contracts_values(name: str, expected: tuple) -> None:
    options = parse_options({"preset": name})
    assert (options.format, options.quality, options.max_width, options.max_height) == expected
    assert options.preset == name
    assert options.explicit is True


def test_preset_name_is_case_insensitive() -> None:
    assert parse_options({"preset": "Thumbnail"}).preset == "thumbnail"


def test_unknown_preset_rejected() -> None:
    rejects({"preset": "poster"})


def test_explicit_options_override_a_preset() -> None:
    options = parse_options(
        {"preset": "web", "format": "WEBP", "quality": "55", "max_width": "640"}
    )
    assert options.format is OutputFormat.WEBP
    assert options.quality == 55
    assert options.max_width == 640
    assert options.max_height == 800  # not overridden: the preset's
    assert options.preset == "web"


def test_overriding_a_presets_format_keeps_the_presets_quality() -> None:
    options = parse_options({"preset": "thumbnail", "format": "PNG"})
    assert options.format is OutputFormat.PNG
    assert options.quality == 60


def test_blank_option_does_not_override_a_preset() -> None:
    options = parse_options({"preset": "email", "quality": "", "format": "  "})
    assert options.format is OutputFormat.JPEG
    assert options.quality == 75


# --- booleans ------------------------------------------------------------------------------

TRUE_VALUES = ["true", "TRUE", "True", "1", "yes", "YES", "on", "On", " true ", True, 1]
FALSE_VALUES = ["false", "FALSE", "False", "0", "no", "NO", "off", "OfF", False, 0]


@pytest.mark.parametrize("name", ["crop", "only_mask"])
@pytest.mark.parametrize("given", TRUE_VALUES)
def test_boolean_true_words(name: str, given: object) -> None:
    assert getattr(parse_options({name: given}), name) is True


@pytest.mark.parametrize("name", ["crop", "only_mask"])
@pytest.mark.parametrize("given", FALSE_VALUES)
def test_boolean_false_words(name: str, given: object) -> None:
    assert getattr(parse_options({name: given}), name) is False


@pytest.mark.parametrize("name", ["crop", "only_mask"])
@pytest.mark.parametrize("given", ["y", "n", "2", "-1", "truthy", "nope", "t", "enable", 2])
def test_boolean_garbage_rejected(name: str, given: object) -> None:
    rejects({name: given})


def test_booleans_default_to_false() -> None:
    options = parse_options({})
    assert options.crop is False
    assert options.only_mask is False


# --- bg_color ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("#fff", (255, 255, 255, 255)),
        ("#F00", (255, 0, 0, 255)),
        ("#00ff00", (0, 255, 0, 255)),
        ("#0000FF", (0, 0, 255, 255)),
        ("#11223344", (0x11, 0x22, 0x33, 0x44)),
        ("#ffffff00", (255, 255, 255, 0)),
        ("white", (255, 255, 255, 255)),
        ("Red", (255, 0, 0, 255)),
        ("rebeccapurple", (102, 51, 153, 255)),
        ("  black ", (0, 0, 0, 255)),
    ],
)
def test_bg_color_parses_to_rgba(given: str, expected: tuple[int, int, int, int]) -> None:
    assert parse_options({"bg_color": given}).bg_color == expected


@pytest.mark.parametrize(
    "given", ["#ff", "#fffff", "#gggggg", "notacolour", "ff0000", "#" + "f" * 100, "12", "#"]
)
def test_bg_color_garbage_rejected(given: str) -> None:
    rejects({"bg_color": given})


@pytest.mark.parametrize(
    "given",
    ["rgba(0,0,0,99999999999)", "hsl(0,100%,99999999999%)", "rgb(300,0,0)", "hsv(0,100%,999%)"],
)
def test_bg_color_channels_out_of_range_are_rejected(given: str) -> None:
    """Pillow returns these unchecked; a channel over 255 failed later, after the model ran."""
    rejects({"bg_color": given})


def test_bg_color_defaults_to_none() -> None:
    assert parse_options({}).bg_color is None


# --- crop_margin ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0", Margin(0, False)),
        ("20", Margin(20, False)),
        ("500", Margin(500, False)),
        (15, Margin(15, False)),
        ("0%", Margin(0, True)),
        ("10%", Margin(10, True)),
        ("50%", Margin(50, True)),
    ],
)
def test_crop_margin_px_and_percent(given: object, expected: Margin) -> None:
    assert parse_options({"crop_margin": given}).crop_margin == Margins.all(expected)


@pytest.mark.parametrize("given", ["501", "-1", "51%", "-5%", "abc", "10pt", "%", "1.5", "10 %%"])
def test_crop_margin_out_of_range_rejected(given: str) -> None:
    rejects({"crop_margin": given})


def test_crop_margin_default_is_zero_px() -> None:
    assert parse_options({}).crop_margin == Margins.all(Margin(0, False))


@pytest.mark.parametrize(
    ("margin", "side", "pixels"),
    [
        (Margin(10, True), 200, 20),
        (Margin(10, False), 200, 10),
        (Margin(50, True), 33, 16),
        (Margin(0, True), 999, 0),
    ],
)
def test_margin_pixels(margin: Margin, side: int, pixels: int) -> None:
    assert margin.pixels(side) == pixels


# --- model ---------------------------------------------------------------------------------


def test_model_name_is_kept() -> None:
    assert parse_options({"model": "u2netp"}).model == "u2netp"


@pytest.mark.parametrize("given", ["../u2netp", "u2netp/../x", "a b", "-rf", "x" * 65])
def test_model_name_that_is_not_a_name_rejected(given: str) -> None:
    rejects({"model": given})


# --- unknown options and `explicit` --------------------------------------------------------


@pytest.mark.parametrize("name", ["size", "Format", "widht", "bgcolor"])
def test_unknown_option_rejected(name: str) -> None:
    error = rejects({name: "1"})
    assert name in error.details


def test_explicit_is_false_for_no_options() -> None:
    assert parse_options({}) == Options()
    assert parse_options({}).explicit is False


def test_explicit_is_false_for_blank_options() -> None:
    options = parse_options({"format": "", "quality": "  ", "crop": None, "bg_color": "\t"})
    assert options.explicit is False
    assert options == Options()


@pytest.mark.parametrize(
    "raw",
    [
        {"format": "PNG"},
        {"quality": "100"},
        {"crop": "false"},
        {"max_width": 4000},
        {"preset": "print"},
        {"bg_color": "white"},
        {"only_mask": "0"},
        {"crop_margin": "0"},
    ],
)
def test_explicit_is_true_when_any_option_is_given(raw: dict) -> None:
    assert parse_options(raw).explicit is True


def test_options_are_frozen() -> None:
    options = parse_options({})
    with pytest.raises(AttributeError):
        options.quality = 5  # type: ignore[misc]
