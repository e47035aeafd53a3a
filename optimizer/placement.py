"""Where the photo lands in the output: fitted into the output limits (`fit_frame`), or placed
so that its subject sits on a canvas at a scale and position (`place`); and the region of a
background picture that covers a canvas (`cover_box`). Numbers alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer.geometry import Bounds, Box, Rect, Size, clip, fit_size, is_empty, rounded, size_of

Share = tuple[float, float]  # a point as shares of a width and a height, 0..1


@dataclass(frozen=True)
class Layout:
    """Where the photo goes: its region `source` (photo pixels) is resampled onto `target`
    (output pixels) of an output of `size`; the rest of the output is empty."""

    size: Size
    source: Rect
    target: Bounds

    @property
    def fills_output(self) -> bool:
        return self.target == (0, 0, *self.size)


@dataclass(frozen=True)
class Placement:
    """The placement options, resolved: `scale` a share of the canvas (None: the subject keeps
    its pixel size), `position` shares of the free room (None: where it was), `canvas` the
    output size before `box`/`max_area` (None: the frame's own size)."""

    scale: float | None = None
    position: Share | None = None
    canvas: Size | None = None


def fit_frame(frame: Bounds, box: Box, max_area: int | None) -> Layout:
    """No placement: the frame (the photo, or its crop) fitted into the output limits."""
    size = fit_size(size_of(frame), box, max_area)
    return Layout(size, frame, (0, 0, *size))


def place(
    frame: Bounds, subject: Bounds, placement: Placement, box: Box, max_area: int | None
) -> Layout:
    """The frame drawn so that `subject` (a box in photo pixels) sits on the canvas at the
    placement's scale and position, the canvas then fitted into the output limits.

    Only the part of the frame that lands on the canvas is drawn (`source` -> `target`).
    """
    canvas = placement.canvas or size_of(frame)
    width, height = size_of(subject)
    factor = 1.0
    if placement.scale is not None:
        factor = placement.scale * min(canvas[0] / width, canvas[1] / height)
    share_x, share_y = placement.position or original_position(frame, subject)
    left = share_x * (canvas[0] - width * factor)
    top = share_y * (canvas[1] - height * factor)
    size = fit_size(canvas, box, max_area)
    zoom_x, zoom_y = size[0] / canvas[0], size[1] / canvas[1]

    def to_output(x: float, y: float) -> tuple[float, float]:
        return zoom_x * (left + (x - subject[0]) * factor), zoom_y * (
            top + (y - subject[1]) * factor
        )

    def to_photo(x: float, y: float) -> tuple[float, float]:
        return subject[0] + (x / zoom_x - left) / factor, subject[1] + (y / zoom_y - top) / factor

    drawn = (*to_output(frame[0], frame[1]), *to_output(frame[2], frame[3]))
    target = clip(rounded(drawn), size)
    if is_empty(target):
        return Layout(size, (0.0, 0.0, 0.0, 0.0), (0, 0, 0, 0))
    source = (*to_photo(target[0], target[1]), *to_photo(target[2], target[3]))
    return Layout(size, clip_rect(source, frame), target)


def original_position(frame: Bounds, subject: Bounds) -> Share:
    """Where `subject` sits in `frame`, as shares of the free room (0.5 where there is none)."""
    free_x = (frame[2] - frame[0]) - (subject[2] - subject[0])
    free_y = (frame[3] - frame[1]) - (subject[3] - subject[1])
    return (
        (subject[0] - frame[0]) / free_x if free_x else 0.5,
        (subject[1] - frame[1]) / free_y if free_y else 0.5,
    )


def clip_rect(rect: Rect, frame: Bounds) -> Rect:
    """Rounding may push a mapped edge a hair outside the frame; resampling must not read
    there."""
    return (
        max(rect[0], frame[0]),
        max(rect[1], frame[1]),
        min(rect[2], frame[2]),
        min(rect[3], frame[3]),
    )


def cover_box(size: Size, canvas: Size) -> Rect:
    """The centred region of an image of `size` with the canvas's aspect ratio: scaled to the
    canvas, it covers it exactly."""
    width, height = size
    scale = max(canvas[0] / width, canvas[1] / height)
    used_width, used_height = canvas[0] / scale, canvas[1] / scale
    left, top = (width - used_width) / 2, (height - used_height) / 2
    return left, top, left + used_width, top + used_height
