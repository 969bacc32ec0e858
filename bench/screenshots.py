"""The README's pictures from a real photo: screenshots of the page, the hero picture and the page's examples.

    .venv/bin/python bench/screenshots.py --photo ../shared/images/generation/marinabaysands.jpg \\
        --painting ../shared/images/harmonization/scream.jpg \\
        --naive ../shared/images/harmonization/scream_naive.jpg \\
        --mask ../shared/images/harmonization/scream_naive_mask.jpg

Starts the embedded service (`python -m worker.embedded`, what `make run` starts) on a temp data folder, drives
the page in Debian's chromium through Playwright (`executable_path`, as tests/browser does), and does what a
person would: signs in, uploads the photo, trains it with the quick preset and a x4 super-resolution head, draws
samples, makes an MP4 animation, enlarges, trains a harmonization model on the painting and harmonizes an object
cut from the naive paste with its mask. Writes:

- docs/screenshots/*.png: the names the README shows (plus first-view.png, the page before any model);
- docs/results/hero.jpg: training photo | samples | the scene at twice its width (the README's top picture);
- api/static/examples/*.jpg: the strip the page shows while a person has no model yet.

Minutes on a CPU (two quick trainings); not run in CI. The tests keep their tiny synthetic models.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
STRIP_HEIGHT = 128  # px of the page's example images (shown ~16 rem wide)
HERO_HEIGHT = 240


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {message}", flush=True)


class Service:
    """The embedded stack in a temp folder, and an API key for it."""

    def __init__(self, root: Path, port: int) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CONSINGAN_")},
            "CONSINGAN_DATABASE_URL": f"sqlite:///{root / 'consingan.db'}",
            "CONSINGAN_STORAGE_DIR": str(root / "objects"),
            "CONSINGAN_PORT": str(port),
            "CONSINGAN_DEVICE": "cpu",
            "CONSINGAN_QUEUE_MODE": "embedded",
        }
        self.database_url = env["CONSINGAN_DATABASE_URL"]
        self.key = self.new_key("screenshots")
        self.log_path = root / "embedded.log"
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "worker.embedded"],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit(f"the embedded service did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.5)

    def new_key(self, owner: str) -> str:
        """An API key of a new owner (who has no models yet)."""
        from core.keys import main as keys_main
        from core.settings import get_settings

        printed = io.StringIO()
        with redirect_stdout(printed):
            keys_main(["create", "--owner", owner], settings=get_settings(database_url=self.database_url))
        return next(
            line.split(":", 1)[1].strip()
            for line in printed.getvalue().splitlines()
            if line.startswith("api key")
        )

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key}", **kwargs.pop("headers", {})}
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        return httpx.request(method, url, headers=headers, timeout=60, **kwargs)

    def wait(self, path: str, timeout_s: float = 3600) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            body: dict[str, Any] = self.api("GET", path).json()
            if body["state"] in ("succeeded", "failed", "canceled"):
                if body["state"] != "succeeded":
                    raise SystemExit(
                        f"{path} {body['state']}: {body.get('error')}\n{self.log_path.read_text()[-3000:]}"
                    )
                return body
            time.sleep(1)
        raise SystemExit(f"{path} did not finish in {timeout_s} s")

    def image(self, url: str) -> Image.Image:
        return Image.open(io.BytesIO(self.api("GET", url, follow_redirects=True).content)).convert("RGB")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def row(images: list[Image.Image], height: int, gap: int = 4) -> Image.Image:
    """Images side by side at one height on white."""
    scaled = [
        image.resize((round(image.width * height / image.height), height), Image.Resampling.LANCZOS)
        for image in images
    ]
    canvas = Image.new("RGB", (sum(i.width for i in scaled) + gap * (len(scaled) - 1), height), "white")
    left = 0
    for image in scaled:
        canvas.paste(image, (left, 0))
        left += image.width + gap
    return canvas


def mirrored_png(photo: Path) -> bytes:
    """The photo mirrored left-right: a painting in its colours with another layout than the one it learned."""
    out = io.BytesIO()
    ImageOps.mirror(Image.open(photo).convert("RGB")).save(out, format="PNG")
    return out.getvalue()


def cut_object(naive: Path, mask: Path) -> bytes:
    """The pasted object of a naive image, cut out with its mask: an RGBA PNG whose transparency is the mask."""
    picture = Image.open(naive).convert("RGB")
    alpha = Image.open(mask).convert("L").point(lambda v: 255 if v > 127 else 0)
    box = alpha.getbbox()
    cut = picture.copy()
    cut.putalpha(alpha)
    out = io.BytesIO()
    cut.crop(box).save(out, format="PNG")
    return out.getvalue()


def save_jpeg(image: Image.Image, path: Path, quality: int = 85) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", quality=quality, optimize=True)
    log(f"wrote {path.relative_to(ROOT)} ({image.width} x {image.height}, {path.stat().st_size // 1024} KB)")


def sign_in(page: Any, service: Service, hash_: str = "") -> None:
    page.goto(f"{service.base_url}/{hash_}")
    page.fill("#api-key", service.key)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    shared = ROOT.parent / "shared" / "images"
    parser.add_argument("--photo", type=Path, default=shared / "generation" / "marinabaysands.jpg")
    parser.add_argument("--painting", type=Path, default=shared / "harmonization" / "scream.jpg")
    parser.add_argument("--naive", type=Path, default=shared / "harmonization" / "scream_naive.jpg")
    parser.add_argument("--mask", type=Path, default=shared / "harmonization" / "scream_naive_mask.jpg")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--screenshots", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--hero", type=Path, default=ROOT / "docs" / "results" / "hero.jpg")
    parser.add_argument("--examples", type=Path, default=ROOT / "api" / "static" / "examples")
    parser.add_argument(
        "--keep-checkpoint", type=Path, help="also save the generation model's checkpoint here"
    )
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install -y chromium)")
    shots = args.screenshots
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="consingan-shots-") as tmp:
        service = Service(Path(tmp), free_port())
        log(f"service up at {service.base_url}")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
                context.set_default_timeout(60_000)
                page = context.new_page()
                run(page, browser, service, args, shots)
                browser.close()
        finally:
            service.close()
    return 0


def run(page: Any, browser: Any, service: Service, args: argparse.Namespace, shots: Path) -> None:
    # --- sign in, a wrong key, the first view (no models yet: the examples) ---
    page.goto(service.base_url)
    page.wait_for_selector("#sign-in:not([hidden])")
    page.screenshot(path=shots / "sign-in.png")
    page.fill("#api-key", "csk_not-a-real-key")
    page.click("#sign-in-form button[type=submit]")
    page.locator("#api-key-error").wait_for(state="visible")
    page.screenshot(path=shots / "wrong-key.png")
    page.fill("#api-key", service.key)
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")

    # --- an upload that is not an image ---
    page.set_input_files(
        "#train-image", files=[{"name": "holiday.png", "mimeType": "image/png", "buffer": b"not a picture"}]
    )
    page.click("button:has-text('Start training')")
    page.locator("#train-image-error").wait_for(state="visible")
    page.screenshot(path=shots / "upload-error.png")

    # --- upload the photo, quick preset, a x4 super-resolution head; watch it train ---
    page.goto(f"{service.base_url}/#/new")
    page.set_input_files(
        "#train-image",
        files=[{"name": args.photo.name, "mimeType": "image/jpeg", "buffer": args.photo.read_bytes()}],
    )
    page.select_option("#train-preset", "quick")
    page.click("summary:has-text('Advanced settings')")
    page.fill("#train-seed", str(args.seed))
    page.fill("#train-sr-factor", "4")
    page.click("button:has-text('Start training')")
    page.wait_for_url("**/#/models/mdl_*")
    model_id = page.url.rsplit("/", 1)[1]
    log(f"training {model_id} on {args.photo.name}")
    # --- the harmonization model trains after the photo's (one worker): queued now through the API ---
    harmonization = service.api(
        "POST",
        "/v1/models",
        data={"preset": "quick", "mode": "harmonization", "seed": str(args.seed)},
        files={"image": (args.painting.name, args.painting.read_bytes(), "image/jpeg")},
    )
    assert harmonization.status_code == 202, harmonization.text

    shot_taken = False
    started = time.monotonic()
    while page.locator("[data-ref=state] .badge").inner_text() != "succeeded":
        state = page.locator("[data-ref=state] .badge").inner_text()
        if state in ("failed", "canceled"):
            raise SystemExit(f"training {state}\n{service.log_path.read_text()[-3000:]}")
        text = page.locator("[data-ref=progress-text]").inner_text()
        if (
            not shot_taken
            and text.startswith("Stage 3")
            and page.locator(".stage-tile img[src]").count() >= 2
        ):
            page.screenshot(path=shots / "training-progress.png")
            shot_taken = True
            log(f"training-progress.png at {text}")
        page.wait_for_timeout(1000)
    log(f"trained in {time.monotonic() - started:.0f} s")
    page.get_by_role("heading", name="Gallery").wait_for()
    page.locator("[data-ref=stage-strip] img[src]").last.wait_for()
    page.wait_for_timeout(1500)
    page.screenshot(path=shots / "gallery.png", full_page=True)

    # --- draw 4 at 1.5x width, make an MP4 animation ---
    page.fill("#draw-n", "4")
    page.fill("#draw-scale-w", "1.5")
    page.click("button:has-text('Draw more')")
    page.locator("[data-ref=draw-status]").filter(has_text="Drew 4 images").wait_for(timeout=300_000)
    page.fill("#anim-frames", "60")
    page.select_option("#anim-format", "mp4")
    page.click("button:has-text('Make an animation')")
    page.locator("[data-ref=animations] .tile video[src]").first.wait_for(timeout=300_000)
    page.wait_for_function("() => document.querySelector('[data-ref=animations] video').readyState >= 2")
    page.wait_for_timeout(1500)
    page.screenshot(path=shots / "samples-1.5x.png", full_page=True)

    # --- enlarge x4 with the model's head: it trains as a job of its own after the model (and, on one worker,
    # after the harmonization model queued before it) ---
    head = service.api("GET", f"/v1/models/{model_id}").json()["sr_head_training"]
    log(f"waiting for the enlargement head (job {head['job_id']})")
    service.wait(f"/v1/jobs/{head['job_id']}")
    page.reload()
    page.locator("#sr-factor").wait_for(state="visible", timeout=120_000)
    page.fill("#sr-factor", "4")
    page.click("button:has-text('Enlarge')")
    page.locator("[data-ref=enlargements] .tile img[src]").first.wait_for(timeout=300_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=shots / "super-resolution.png", full_page=True)

    # --- paint-to-image: the photo's own colours as swatches, the photo mirrored as the painting ---
    page.goto(f"{service.base_url}/#/models/{model_id}/paint")
    page.locator("[data-ref=palette] button").nth(4).wait_for()
    page.set_input_files(
        "#painting-file",
        files=[{"name": "mirrored.png", "mimeType": "image/png", "buffer": mirrored_png(args.photo)}],
    )
    page.click("[data-ref=run]")
    page.locator("[data-ref=results] img[src]").nth(1).wait_for(timeout=300_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-ref=results] img')].every(i => i.naturalWidth > 0)"
    )
    page.screenshot(path=shots / "paint.png", full_page=True)

    # --- harmonize an object cut from the naive paste into the painting ---
    harmonization_id = harmonization.json()["id"]
    log(f"waiting for the harmonization model {harmonization_id}")
    service.wait(f"/v1/models/{harmonization_id}")
    page.goto(f"{service.base_url}/#/models/{harmonization_id}/harmonize")
    page.get_by_text("The painting,").first.wait_for()
    page.set_input_files(
        "#object-file",
        files=[{"name": "object.png", "mimeType": "image/png", "buffer": cut_object(args.naive, args.mask)}],
    )
    page.get_by_text("its transparency is the mask").wait_for()
    page.screenshot(path=shots / "harmonize-editor.png", full_page=True)
    page.click("button:has-text('Harmonize')")
    page.locator("[data-ref=result-img]").wait_for(state="visible", timeout=300_000)
    page.wait_for_function("() => document.querySelector('[data-ref=result-img]').naturalWidth > 0")
    page.fill("#compare-slider", "50")
    page.locator("#compare-slider").dispatch_event("input")
    page.screenshot(path=shots / "harmonize-result.png", full_page=True)

    # --- a phone ---
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    small = phone.new_page()
    sign_in(small, service, f"#/models/{model_id}")
    small.locator("[data-ref=gallery] .tile img[src]").first.wait_for()
    small.wait_for_timeout(1500)
    small.screenshot(path=shots / "phone.png", full_page=True)
    small.goto(f"{service.base_url}/#/models/{harmonization_id}/harmonize")
    small.get_by_text("The painting,").first.wait_for()
    small.set_input_files(
        "#object-file",
        files=[{"name": "object.png", "mimeType": "image/png", "buffer": cut_object(args.naive, args.mask)}],
    )
    small.get_by_text("its transparency is the mask").wait_for()
    small.screenshot(path=shots / "phone-harmonize.png", full_page=True)
    phone.close()
    log(f"screenshots in {shots}")

    pictures(service, model_id, harmonization_id, args)

    # --- the first view of someone with no model yet: the examples just written ---
    visitor = browser.new_context(viewport={"width": 1280, "height": 900})
    first = visitor.new_page()
    first.goto(service.base_url)
    first.fill("#api-key", service.new_key("visitor"))
    first.click("#sign-in-form button[type=submit]")
    first.locator("#examples:not([hidden])").wait_for()
    first.wait_for_function(
        "() => [...document.querySelectorAll('#examples img')].every((i) => i.naturalWidth > 0)"
    )
    first.screenshot(path=shots / "first-view.png", full_page=True)
    visitor.close()


def pictures(service: Service, model_id: str, harmonization_id: str, args: argparse.Namespace) -> None:
    """The hero picture and the page's examples, drawn through the API from the two models."""
    model = service.api("GET", f"/v1/models/{model_id}").json()
    photo = Image.open(args.photo).convert("RGB")

    def draw(**body: Any) -> list[Image.Image]:
        job = service.api("POST", f"/v1/models/{model_id}/samples", json=body).json()
        done = service.wait(f"/v1/jobs/{job['id']}")
        return [service.image(sample["url"]) for sample in done["samples"]]

    samples = draw(n=3, seed=args.seed)
    wide = draw(n=1, seed=args.seed + 1, scale_w=2.0)
    save_jpeg(row([photo, *samples, *wide], HERO_HEIGHT, gap=6), args.hero)

    sr_jobs = service.api("GET", f"/v1/jobs?model_id={model_id}&kind=super_resolve").json()["data"]
    enlarged = service.image(sr_jobs[0]["result"]["files"][0]["url"])
    small = service.image(model["input_url"]).resize(
        (enlarged.width // 4, enlarged.height // 4), Image.Resampling.LANCZOS
    )
    harm_jobs = service.api("GET", f"/v1/jobs?model_id={harmonization_id}&kind=harmonize").json()["data"]
    harmonized = service.image(harm_jobs[0]["result"]["url"])
    naive = Image.open(args.naive).convert("RGB")
    args.examples.mkdir(parents=True, exist_ok=True)
    save_jpeg(row([photo, *samples], STRIP_HEIGHT), args.examples / "samples.jpg", 80)
    save_jpeg(row(wide, STRIP_HEIGHT), args.examples / "retarget.jpg", 80)
    save_jpeg(row([naive, harmonized], STRIP_HEIGHT), args.examples / "harmonization.jpg", 80)
    save_jpeg(
        row([small.resize(enlarged.size, Image.Resampling.NEAREST), enlarged], STRIP_HEIGHT),
        args.examples / "superres.jpg",
        80,
    )
    if args.keep_checkpoint:
        checkpoint = service.api("GET", f"/v1/models/{model_id}/checkpoint", follow_redirects=True)
        args.keep_checkpoint.write_bytes(checkpoint.content)
        log(f"checkpoint kept in {args.keep_checkpoint}")


if __name__ == "__main__":
    sys.exit(main())
