"""Reading prediction.png back: which series were drawn, and over which seconds."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from loadtest.kpa.plot import COLOURS

TOLERANCE = 12  # per channel; anti-aliased edges differ more, line centres not at all
# A series counts as drawn in a pixel column when at least this many of its pixels are there.
MIN_PIXELS = 2
# Half the widest line (5 pt at 100 dpi) and a margin.
ZERO_BAND_PX = 6


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


class Picture:
    def __init__(self, path: Path) -> None:
        image = Image.open(path)
        self.meta = json.loads(image.text["Axes"])  # type: ignore[attr-defined]
        self.image = image.convert("RGB")

    def columns(self, series: str, panel: str, above_zero: bool = False) -> set[int]:
        """Pixel columns of ``panel`` where ``series``'s colour shows.

        ``above_zero`` leaves out the band around the panel's bottom edge, where a line at 0
        runs, so that only values above 0 count.
        """
        left, top, right, bottom = self.meta["panels"][panel]
        if above_zero:
            bottom -= ZERO_BAND_PX
        want = _rgb(COLOURS[series])
        pixels = self.image.load()
        found = set()
        for x in range(left + 1, right - 1):
            count = 0
            for y in range(top + 1, bottom - 1):
                pixel = pixels[x, y]
                if all(abs(pixel[i] - want[i]) <= TOLERANCE for i in range(3)):
                    count += 1
            if count >= MIN_PIXELS:
                found.add(x)
        return found

    def seconds(self, series: str, panel: str, above_zero: bool = False) -> set[int]:
        """The seconds whose pixel columns show ``series`` (a column may stand for several)."""
        left, _, right, _ = self.meta["panels"][panel]
        first, last = self.meta["seconds"]
        per_pixel = (last - first) / (right - left)
        found: set[int] = set()
        for x in self.columns(series, panel, above_zero):
            start = first + (x - left) * per_pixel
            found.update(range(int(start), int(start + per_pixel) + 1))
        return found
