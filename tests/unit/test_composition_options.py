"""The composition options' grammar, defaults and cache identity (docs/api.md, "Composition")."""

from __future__ import annotations

import pytest

from contract.errors import InvalidParameter
from gateway import openapi
from optimizer.geometry import Length, Margins, Roi
from optimizer.options import OPTION_NAMES, PRESETS, OutputFormat, parse_options
from optimizer.placement import Placement

DIGEST = "ab" * 32


def rejects(raw: dict, option: str, **kwargs: object) -> InvalidParameter:
    with pytest.raises(InvalidParameter) as caught:
        parse_options(raw, **kwargs)  # type: ignore[arg-type]
    assert caught.value.code == "invalid_parameter"
    assert option in caught.value.details, caught.value.details
    return caught.value


# --- values outside the grammar, each naming its option ------------------------------------


@pytest.mark.parametrize(
    ("raw", "option"),
    [
        ({"scale": "5%"}, "scale"),
        ({"canvas": "10x10"}, "canvas"),
        ({"canvas": "99999x99999"}, "canvas"),
        ({"roi": "0 0 0 0"}, "roi"),
        ({"shadow": "purple"}, "shadow"),
        ({"shadow_opacity": "150"}, "shadow_opacity"),
        ({"edges": "sharpen"}, "edges"),
        ({"crop_margin": "10 20 30"}, "crop_margin"),
    ],
)
def test_the_bad_values_are_refused_naming_the_option(raw: dict, option: str) -> None:
    rejects(raw, option)


def test_bg_color_with_a_background_image_is_refused() -> None:
    error = rejects({"bg_color": "white"}, "bg_color", background_digest=DIGEST)
    assert "bg_image" in error.details


# --- scale ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"), [("10%", 10), ("100%", 100), ("85%", 85), (" 50% ", 50)]
)
def test_scale_percentages(given: str, expected: int) -> None:
    assert parse_options({"scale": given}).scale == expected


def test_scale_original_keeps_the_subjects_size() -> None:
    assert parse_options({"scale": "ORIGINAL"}).scale is None
    assert parse_options({"scale": "original"}).placement is None


@pytest.mark.parametrize("given", ["5%", "9%", "101%", "80", "80 %", "0.8", "-10%", "big", "%"])
def test_scale_outside_the_grammar(given: str) -> None:
    rejects({"scale": given}, "scale")


# --- position ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("center", (50, 50)),
        ("CENTER", (50, 50)),
        ("0%", (0, 0)),
        ("100%", (100, 100)),
        ("25% 75%", (25, 75)),
        ("  10%   90% ", (10, 90)),
        ("original", None),
    ],
)
def test_position_values(given: str, expected: tuple | None) -> None:
    assert parse_options({"position": given}).position == expected


@pytest.mark.parametrize(
    "given", ["left", "50", "101%", "50% 50% 50%", "-5%", "50%,50%", "centre", "50%px"]
)
def test_position_outside_the_grammar(given: str) -> None:
    rejects({"position": given}, "position")


def test_scale_implies_centred_unless_a_position_is_given() -> None:
    assert parse_options({"scale": "80%"}).position == (50, 50)
    assert parse_options({"scale": "80%", "position": "0% 100%"}).position == (0, 100)
    assert parse_options({"scale": "80%", "position": "original"}).position is None


def test_position_alone_moves_the_subject_at_its_own_size() -> None:
    options = parse_options({"position": "100%"})
    assert options.placement == Placement(scale=None, position=(1.0, 1.0), canvas=None)


# --- canvas --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("1000x1000", (1000, 1000)),
        ("100X4000", (100, 4000)),
        ("800 x 600", (800, 600)),
        ("640×480", (640, 480)),
    ],
)
def test_canvas_sizes(given: str, expected: tuple) -> None:
    assert parse_options({"canvas": given}).canvas == expected


@pytest.mark.parametrize(
    "given", ["10x10", "99x1000", "1000x99", "4001x100", "99999x99999", "1000", "1000x", "ax b"]
)
def test_canvas_outside_the_grammar(given: str) -> None:
    rejects({"canvas": given}, "canvas")


def test_the_largest_canvas_side_is_a_parameter() -> None:
    assert parse_options({"canvas": "6000x100"}, max_canvas_side=6000).canvas == (6000, 100)
    error = rejects({"canvas": "2001x100"}, "canvas", max_canvas_side=2000)
    assert "100-2000" in error.details


def test_a_canvas_implies_full_scale_centred() -> None:
    options = parse_options({"canvas": "1000x800"})
    assert (options.scale, options.position) == (100, (50, 50))
    assert options.placement == Placement(scale=1.0, position=(0.5, 0.5), canvas=(1000, 800))


def test_a_canvas_keeps_an_explicit_scale_and_position() -> None:
    options = parse_options({"canvas": "1000x800", "scale": "original", "position": "0%"})
    assert (options.scale, options.position) == (None, (0, 0))


# --- roi -----------------------------------------------------------------------------------


def px(value: int) -> Length:
    return Length(value)


def pc(value: int) -> Length:
    return Length(value, percent=True)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0 0 100px 200px", Roi(px(0), px(0), px(100), px(200))),
        ("10% 20% 90% 80%", Roi(pc(10), pc(20), pc(90), pc(80))),
        ("0% 0% 100% 100%", Roi(pc(0), pc(0), pc(100), pc(100))),
        ("5PX 0 50% 100%", Roi(px(5), px(0), pc(50), pc(100))),
    ],
)
def test_roi_values(given: str, expected: Roi) -> None:
    assert parse_options({"roi": given}).roi == expected


@pytest.mark.parametrize(
    "given",
    [
        "0 0 0 0",
        "0 0 100 200",  # bare numbers other than 0: no unit
        "10% 10% 90%",
        "10% 10% 90% 90% 5%",
        "50% 0% 40% 100%",  # x1 > x2
        "0% 50% 100% 50%",  # y1 == y2
        "0% 0% 101% 100%",
        "-5px 0 10px 10px",
        "a b c d",
    ],
)
def test_roi_outside_the_grammar(given: str) -> None:
    rejects({"roi": given}, "roi")


# --- shadow, opacity, edges ----------------------------------------------------------------


def test_shadow_values() -> None:
    assert parse_options({"shadow": "drop"}).shadow is True
    assert parse_options({"shadow": "None"}).shadow is False
    assert parse_options({}).shadow is False


@pytest.mark.parametrize("given", [0, 100, "50", " 75 "])
def test_shadow_opacity_range(given: object) -> None:
    assert parse_options({"shadow_opacity": given}).shadow_opacity == int(str(given).strip())


@pytest.mark.parametrize("given", ["150", "-1", "101", "50%", "half", True])
def test_shadow_opacity_outside_the_grammar(given: object) -> None:
    rejects({"shadow_opacity": given}, "shadow_opacity")


def test_shadow_opacity_defaults_to_half() -> None:
    assert parse_options({}).shadow_opacity == 50


def test_edges_values() -> None:
    assert parse_options({"edges": "decontaminate"}).decontaminate is True
    assert parse_options({"edges": "KEEP"}).decontaminate is False
    assert parse_options({}).decontaminate is False


@pytest.mark.parametrize("given", ["shadow", "blur"])
def test_shadow_words_outside_the_grammar(given: str) -> None:
    rejects({"shadow": given}, "shadow")


# --- crop_margin: 1, 2 or 4 values ---------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("10", Margins.all(px(10))),
        ("10px", Margins.all(px(10))),
        ("5%", Margins.all(pc(5))),
        ("10 20px", Margins(px(10), px(20), px(10), px(20))),
        ("1 2% 3 4px", Margins(px(1), pc(2), px(3), px(4))),
        ("500 50% 0 0%", Margins(px(500), pc(50), px(0), pc(0))),
    ],
)
def test_crop_margin_values_in_css_order(given: str, expected: Margins) -> None:
    assert parse_options({"crop_margin": given}).crop_margin == expected


@pytest.mark.parametrize(
    "given", ["10 20 30", "1 2 3 4 5", "10 501", "51% 0", "10 -1", "10,20", "1 2 3 4%%"]
)
def test_crop_margin_outside_the_grammar(given: str) -> None:
    rejects({"crop_margin": given}, "crop_margin")


# --- background image ----------------------------------------------------------------------


def test_a_background_image_is_carried_by_its_digest() -> None:
    options = parse_options({}, background_digest=DIGEST)
    assert options.bg_image == DIGEST
    assert options.explicit is True
    assert options.composes


def test_a_background_image_replaces_a_presets_colour() -> None:
    options = parse_options({"preset": "product"}, background_digest=DIGEST)
    assert options.bg_color is None
    assert options.bg_image == DIGEST
    assert options.canvas == (1000, 1000)


def test_bg_image_is_not_an_option_value() -> None:
    rejects({"bg_image": "data:image/png;base64,AAAA"}, "bg_image")


# --- the e-commerce preset -----------------------------------------------------------------


def test_the_product_preset_is_a_white_square_at_90_percent() -> None:
    options = parse_options({"preset": "product"})
    assert options.format is OutputFormat.JPEG
    assert options.canvas == (1000, 1000)
    assert options.scale == 90
    assert options.position == (50, 50)
    assert options.bg_color == (255, 255, 255, 255)
    assert PRESETS["product"].as_options() == {
        "format": "JPEG",
        "quality": 90,
        "max_width": None,
        "max_height": None,
        "bg_color": "white",
        "canvas": "1000x1000",
        "scale": "90%",
    }


def test_the_product_preset_yields_to_explicit_options() -> None:
    options = parse_options({"preset": "product", "scale": "85%", "bg_color": "#f0f0f0"})
    assert options.scale == 85
    assert options.bg_color == (240, 240, 240, 255)


# --- cache identity ------------------------------------------------------------------------

COMPOSITION_OPTIONS: list[tuple[dict, str | None]] = [
    ({"scale": "80%"}, None),
    ({"scale": "81%"}, None),
    ({"position": "0%"}, None),
    ({"position": "0% 100%"}, None),
    ({"canvas": "1000x1000"}, None),
    ({"canvas": "1000x1001"}, None),
    ({"roi": "0% 0% 50% 50%"}, None),
    ({"roi": "0 0 50px 50px"}, None),
    ({"shadow": "drop"}, None),
    ({"shadow": "drop", "shadow_opacity": "70"}, None),
    ({"edges": "decontaminate"}, None),
    ({"crop": "true", "crop_margin": "10 20"}, None),
    ({"crop": "true", "crop_margin": "10 20 10 21"}, None),
    ({}, DIGEST),
    ({}, "cd" * 32),
    ({"preset": "product"}, None),
]


def test_every_composition_option_changes_the_output_id() -> None:
    ids = [
        parse_options(raw, background_digest=digest).output_id
        for raw, digest in [({}, None), *COMPOSITION_OPTIONS]
    ]
    assert len(set(ids)) == len(ids)


def test_a_request_without_composition_keeps_its_former_output_id() -> None:
    options = parse_options({"crop": "true", "crop_margin": "10%"})
    assert options.output_id == repr(
        ("PNG", 100, None, None, None, True, 10, True, False, None, None)
    )


def test_the_shadow_opacity_counts_only_with_a_shadow() -> None:
    assert parse_options({"shadow_opacity": "70"}).output_id == parse_options({}).output_id


def test_only_the_region_of_interest_changes_the_mask_id() -> None:
    assert parse_options({}).mask_id == ""
    for raw, digest in COMPOSITION_OPTIONS:
        options = parse_options(raw, background_digest=digest)
        assert (options.mask_id != "") is (options.roi is not None)
    first = parse_options({"roi": "0% 0% 50% 50%"}).mask_id
    assert first != parse_options({"roi": "0% 0% 50% 51%"}).mask_id


def test_the_settings_default_canvas_side_is_the_parsers() -> None:
    from optimizer.options import DEFAULT_MAX_CANVAS_SIDE
    from settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.max_canvas_side == DEFAULT_MAX_CANVAS_SIDE


def test_the_openapi_document_describes_every_option_and_the_background() -> None:
    """What the native routes take, as their OpenAPI document describes it: every option
    `parse_options` knows, the background URL, and the background picture itself."""
    described = set(openapi.ProcessingOptions.model_fields)
    assert described == OPTION_NAMES | {"bg_image_url"}
    assert "bg_image" in openapi.Base64Request.model_fields
    for form in (openapi.ONE_IMAGE, openapi.MANY_IMAGES):
        assert form["properties"]["bg_image"]["format"] == "binary"
