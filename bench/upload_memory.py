"""Memory of the API process under parallel uploads of small files that decode to many pixels.

    .venv/bin/python bench/upload_memory.py                  # 4 parallel uploads of each case
    .venv/bin/python bench/upload_memory.py --uploads 8 --cases png-8000x5000

One fresh API process per case (`uvicorn --factory api.app:create_app`, one worker, SQLite, local storage,
no queue: accepted jobs stay queued). RSS from /proc: `idle` after a warm-up upload, `peak` is the kernel's
high-water mark (VmHWM) over the whole process life, `after` is VmRSS 3 s after the last answer. Prints one row
per case with the HTTP statuses the uploads got.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import api_process, fresh_database, new_key


def _scene(width: int, height: int) -> Image.Image:
    """Large, flat and a few shapes: compresses to ~100 KB as PNG, decodes to width*height pixels."""
    image = Image.new("RGB", (width, height), (90, 140, 200))
    draw = ImageDraw.Draw(image)
    for i in range(12):
        x, y = (i * 613) % width, (i * 389) % height
        draw.ellipse((x, y, x + width // 6, y + height // 6), fill=(20 * i % 255, 200, 40))
    return image


def _encoded(fmt: str, width: int, height: int, alpha: bool = False) -> Callable[[], bytes]:
    def make() -> bytes:
        out = io.BytesIO()
        image = _scene(width, height)
        if alpha:  # transparency: composited on white, the costliest path
            image.putalpha(Image.linear_gradient("L").resize((width, height)))
        image.save(out, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        return out.getvalue()

    return make


CASES: dict[str, tuple[str, Callable[[], bytes]]] = {
    # the attack: a PNG of ~100 KB that decodes to 40 Mpx, just under the old pixel cap
    "png-8000x5000": ("image/png", _encoded("PNG", 8000, 5000)),
    # the largest PNG the default settings accept (16.7 Mpx), with transparency, and a camera-sized JPEG
    "png-4096x4096": ("image/png", _encoded("PNG", 4096, 4096)),
    "png-rgba-4096x4096": ("image/png", _encoded("PNG", 4096, 4096, alpha=True)),
    "jpeg-6000x4000": ("image/jpeg", _encoded("JPEG", 6000, 4000)),
}


def _rss_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def _upload(base: str, key: str, data: bytes, media_type: str, statuses: list[int]) -> None:
    response = httpx.post(
        f"{base}/v1/models",
        headers={"Authorization": f"Bearer {key}"},
        data={"preset": "quick"},
        files={"image": ("attack", data, media_type)},
        timeout=300,
    )
    statuses.append(response.status_code)


def run_case(name: str, uploads: int, workdir: Path) -> list[str]:
    media_type, make = CASES[name]
    data = make()
    small = _encoded("PNG", 64, 48)()
    with fresh_database("sqlite", workdir / name) as database_url:
        key, _ = new_key(database_url)
        env = {
            "CONSINGAN_DATABASE_URL": database_url,
            "CONSINGAN_QUEUE_MODE": "embedded",  # nothing is sent, no worker runs
            "CONSINGAN_STORAGE_BACKEND": "local",
            "CONSINGAN_STORAGE_DIR": str(workdir / name / "objects"),
            "CONSINGAN_MAX_QUEUED_JOBS_PER_OWNER": "1000",
            "CONSINGAN_LOG_LEVEL": "WARNING",
        }
        with api_process(env) as (base, pid):
            _upload(base, key, small, "image/png", [])  # warm-up: imports, pools, the first decode
            time.sleep(1.0)
            idle = _rss_mb(pid, "VmRSS")
            statuses: list[int] = []
            threads = [
                threading.Thread(target=_upload, args=(base, key, data, media_type, statuses))
                for _ in range(uploads)
            ]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.monotonic() - started
            time.sleep(3.0)
            peak, after = _rss_mb(pid, "VmHWM"), _rss_mb(pid, "VmRSS")
    answers = " ".join(f"{n}x{status}" for status, n in sorted(Counter(statuses).items()))
    return [name, f"{len(data) / 1024:.0f} KB", str(uploads), f"{idle:.0f}", f"{peak:.0f}", f"{after:.0f}",
            f"{seconds:.1f}", answers]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uploads", type=int, default=4, help="parallel uploads per case")
    parser.add_argument("--cases", nargs="*", choices=list(CASES), default=list(CASES))
    args = parser.parse_args()
    header = ["case", "file", "uploads", "idle MB", "peak MB", "after MB", "seconds", "answers"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="consingan-upload-memory-") as tmp:
        for name in args.cases:
            (Path(tmp) / name).mkdir()
            rows.append(run_case(name, args.uploads, Path(tmp)))
            print("  ".join(rows[-1]), file=sys.stderr)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
