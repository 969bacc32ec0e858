"""Pictures the browser tests upload: made here, so a fresh clone needs nothing else."""

from __future__ import annotations

import io
import math

from PIL import Image, ImageDraw, ImageFilter


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def landscape(width: int = 192, height: int = 128) -> bytes:
    """A sky, a sun and two rows of hills with a few trees: structure for a generation model to learn."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / height
        draw.line([(0, y), (width, y)], fill=(int(70 + 120 * t), int(130 + 80 * t), int(220 - 40 * t)))
    draw.ellipse((width * 0.68, height * 0.1, width * 0.84, height * 0.34), fill=(255, 214, 90))
    far = [(x, height * 0.55 + 9 * math.sin(x / 13.0)) for x in range(0, width + 8, 8)]
    draw.polygon([(0, height), *far, (width, height)], fill=(76, 128, 92))
    near = [(x, height * 0.72 + 7 * math.sin(x / 9.0 + 1.3)) for x in range(0, width + 8, 8)]
    draw.polygon([(0, height), *near, (width, height)], fill=(46, 96, 52))
    for x in range(12, width, 29):
        base = height * 0.74 + 7 * math.sin(x / 9.0 + 1.3)
        draw.rectangle((x - 1, base - 4, x + 1, base + 4), fill=(80, 52, 30))
        draw.ellipse((x - 6, base - 17, x + 6, base - 3), fill=(28, 70, 34))
    return _png(image.filter(ImageFilter.SMOOTH))


def painting(width: int = 160, height: int = 120) -> bytes:
    """Brush-stroke bands in warm colours: a 'painting' for a harmonization model."""
    image = Image.new("RGB", (width, height), (214, 120, 52))
    draw = ImageDraw.Draw(image)
    colours = [(232, 170, 62), (190, 82, 40), (120, 60, 90), (60, 70, 130), (238, 200, 120)]
    for k in range(36):
        y = (k * 37) % height
        colour = colours[k % len(colours)]
        points = [(x, y + 6 * math.sin(x / 11.0 + k)) for x in range(-10, width + 10, 6)]
        draw.line(points, fill=colour, width=5 + k % 4)
    return _png(image.filter(ImageFilter.GaussianBlur(0.8)))


def star_object(size: int = 96) -> bytes:
    """A bright cyan star on a transparent background (its alpha becomes the initial mask)."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    centre, outer, inner = size / 2, size * 0.48, size * 0.2
    points = []
    for k in range(10):
        radius = outer if k % 2 == 0 else inner
        angle = -math.pi / 2 + k * math.pi / 5
        points.append((centre + radius * math.cos(angle), centre + radius * math.sin(angle)))
    draw.polygon(points, fill=(40, 220, 235, 255), outline=(10, 90, 120, 255))
    return _png(image)
