"""bg_remover_client.files: finding inputs, naming outputs, reading Content-Disposition."""

from __future__ import annotations

from pathlib import Path

import pytest

from bg_remover_client.files import (
    InputError,
    InputFile,
    choose_output,
    discover,
    filename_from_content_disposition,
    folder_images,
    output_extension,
    output_folder,
    plan_outputs,
    safe_filename,
    write_atomically,
)


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """photos/ with images at two levels plus things that are not inputs."""
    root = tmp_path / "photos"
    for name in (
        "b.jpg",
        "a.PNG",
        "c.webp",
        "d.gif",
        "e.bmp",
        "f.avif",
        "g.jpeg",
        "notes.txt",
        "raw.tiff",
        ".hidden.jpg",
        "a_no_bg.png",
        "noext",
    ):
        touch(root / name)
    touch(root / "sub" / "deep.jpg")
    touch(root / "sub" / "deeper" / "deepest.png")
    touch(root / ".cache" / "thumb.jpg")
    (root / "folder.jpg").mkdir()  # a folder with an image-like name is not an image
    return root


# --- discovery -----------------------------------------------------------------------------


def names(items: list[InputFile]) -> list[str]:
    return [item.relative.as_posix() for item in items]


def test_folder_gives_its_images_sorted_and_ignores_the_rest(tree: Path) -> None:
    assert names(discover([tree])) == [
        "a.PNG",
        "b.jpg",
        "c.webp",
        "d.gif",
        "e.bmp",
        "f.avif",
        "g.jpeg",
    ]


def test_recursive_descends_but_skips_hidden_folders(tree: Path) -> None:
    found = names(discover([tree], recursive=True))
    assert "sub/deep.jpg" in found
    assert "sub/deeper/deepest.png" in found
    assert not any(".cache" in name or name.startswith(".") for name in found)
    assert len(found) == 9


def test_not_recursive_by_default(tree: Path) -> None:
    assert "sub/deep.jpg" not in names(discover([tree]))


def test_earlier_outputs_are_not_inputs_again(tree: Path) -> None:
    assert "a_no_bg.png" not in names(discover([tree], recursive=True))


def test_explicit_files_are_taken_as_given(tree: Path) -> None:
    """A file named on the command line is sent whatever its extension: the server judges."""
    items = discover([tree / "notes.txt", tree / "b.jpg"])
    assert [item.path for item in items] == [tree / "notes.txt", tree / "b.jpg"]
    assert names(items) == ["notes.txt", "b.jpg"]


def test_files_and_folders_mix_and_each_file_counts_once(tree: Path) -> None:
    items = discover([tree / "b.jpg", tree, tree / "sub"])
    paths = [item.path for item in items]
    assert paths[0] == tree / "b.jpg"
    assert paths.count(tree / "b.jpg") == 1
    assert tree / "sub" / "deep.jpg" in paths
    assert len(paths) == 8


def test_missing_input_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        discover([tmp_path / "missing.jpg"])


def test_empty_folder_gives_nothing(tmp_path: Path) -> None:
    assert discover([tmp_path]) == []
    assert folder_images(tmp_path, recursive=True) == []


# --- output names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "ext"),
    [
        (None, "png"),
        ("png", "png"),
        ("jpeg", "jpg"),
        ("JPG", "jpg"),
        ("webp", "webp"),
        ("avif", "avif"),
    ],
)
def test_output_extension(fmt: str | None, ext: str) -> None:
    assert output_extension(fmt) == ext


def test_outputs_beside_the_inputs(tree: Path) -> None:
    items = discover([tree / "b.jpg", tree / "sub"], recursive=True)
    assert plan_outputs(items, None, "webp") == [
        tree / "b_no_bg.webp",
        tree / "sub" / "deep_no_bg.webp",
        tree / "sub" / "deeper" / "deepest_no_bg.webp",
    ]


def test_output_dir_keeps_sub_paths_of_folder_inputs(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    items = discover([tree], recursive=True)
    planned = dict(zip(names(items), plan_outputs(items, out, "png"), strict=True))
    assert planned["b.jpg"] == out / "b_no_bg.png"
    assert planned["sub/deep.jpg"] == out / "sub" / "deep_no_bg.png"
    assert planned["sub/deeper/deepest.png"] == out / "sub" / "deeper" / "deepest_no_bg.png"


def test_output_dir_for_a_file_input_is_flat(tree: Path, tmp_path: Path) -> None:
    item = discover([tree / "sub" / "deep.jpg"])[0]
    assert output_folder(item, tmp_path / "out") == tmp_path / "out"


def test_same_stem_different_extension_do_not_collide(tmp_path: Path) -> None:
    items = discover([touch(tmp_path / "a.jpg"), touch(tmp_path / "a.png")])
    assert plan_outputs(items, None, "png") == [
        tmp_path / "a_no_bg.png",
        tmp_path / "a_png_no_bg.png",
    ]


# --- Content-Disposition -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ('attachment; filename="cat_no_bg.png"', "cat_no_bg.png"),
        ("attachment; filename=cat_no_bg.webp", "cat_no_bg.webp"),
        (
            "attachment; filename=\"image_no_bg.png\"; filename*=UTF-8''%C3%A9t%C3%A9_no_bg.png",
            "été_no_bg.png",
        ),
        (
            "attachment; filename*=utf-8''%E7%8C%AB_no_bg.jpg; filename=\"image_no_bg.jpg\"",
            "猫_no_bg.jpg",
        ),
        ("attachment; FILENAME*=UTF-8'en'caf%C3%A9_no_bg.avif", "café_no_bg.avif"),
        ('attachment; filename="a \\"quoted\\" name.png"', 'a "quoted" name.png'),
        ('attachment; filename="semi;colon_no_bg.png"', "semi;colon_no_bg.png"),
        # a malformed filename* falls back to filename
        ('attachment; filename="plain.png"; filename*=%ZZ', "plain.png"),
        ("attachment; filename=\"plain.png\"; filename*=no-such-charset''x.png", "plain.png"),
        ("attachment", None),
        ("", None),
        (None, None),
    ],
)
def test_filename_from_content_disposition(header: str | None, name: str | None) -> None:
    assert filename_from_content_disposition(header) == name


@pytest.mark.parametrize(
    ("given", "safe"),
    [
        ("cat_no_bg.png", "cat_no_bg.png"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\evil.png", "evil.png"),
        ("/abs/path/x.png", "x.png"),
        ("a\x00b\nc.png", "a_b_c.png"),
        ("..", None),
        (".", None),
        (".bashrc", None),
        ("", None),
        (None, None),
        ("dir/", None),
    ],
)
def test_safe_filename(given: str | None, safe: str | None) -> None:
    assert safe_filename(given) == safe


def test_server_name_is_used_beside_the_planned_output(tmp_path: Path) -> None:
    planned = tmp_path / "out" / "x_no_bg.png"
    chosen = choose_output(planned, "été_no_bg.png", {planned}, overwrite=False)
    assert chosen == tmp_path / "out" / "été_no_bg.png"


def test_server_name_never_leaves_the_output_folder(tmp_path: Path) -> None:
    planned = tmp_path / "x_no_bg.png"
    assert choose_output(planned, "../../x.png", {planned}, False) == tmp_path / "x.png"


def test_server_name_may_not_take_another_outputs_place(tmp_path: Path) -> None:
    first, second = tmp_path / "a_no_bg.png", tmp_path / "a_png_no_bg.png"
    assert choose_output(second, "a_no_bg.png", {first, second}, False) == second


def test_server_name_does_not_replace_an_existing_file_without_overwrite(tmp_path: Path) -> None:
    planned = tmp_path / "we_no_bg.png"
    existing = touch(tmp_path / "server_no_bg.png")
    assert choose_output(planned, existing.name, {planned}, overwrite=False) == planned
    assert choose_output(planned, existing.name, {planned}, overwrite=True) == existing


def test_no_or_unsafe_server_name_keeps_the_plan(tmp_path: Path) -> None:
    planned = tmp_path / "x_no_bg.png"
    assert choose_output(planned, None, {planned}, False) == planned
    assert choose_output(planned, "..", {planned}, False) == planned


def test_write_atomically_leaves_only_the_file(tmp_path: Path) -> None:
    target = tmp_path / "new" / "sub" / "x_no_bg.png"
    write_atomically(target, b"data")
    write_atomically(target, b"newer")
    assert target.read_bytes() == b"newer"
    assert [p.name for p in target.parent.iterdir()] == ["x_no_bg.png"]
