"""`python -m engine paint` end to end on a tiny model, in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from engine.cli import main
from tests.engine.images import encode, gradient


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("paint-cli")
    source = root / "scene.png"
    source.write_bytes(encode(gradient(48, 40), "PNG"))
    tiny = ["--stages", "3", "--iters", "3", "--max-size", "32", "--min-size", "16"]
    out = root / "model"
    assert main(["--device", "cpu", "train", str(source), "--out", str(out), "--preset", "quick", *tiny]) == 0
    return out


def test_paint_writes_n_images_at_the_models_size(model_dir: Path, tmp_path: Path) -> None:
    painting = tmp_path / "painting.png"
    painting.write_bytes(encode(gradient(96, 80).transpose(Image.Transpose.FLIP_LEFT_RIGHT), "PNG"))
    out = tmp_path / "out" / "painted.png"
    args = ["--painting", str(painting), "--stage", "2", "--quantize", "-n", "2", "--out", str(out)]
    assert main(["--device", "cpu", "paint", str(model_dir), *args]) == 0
    written = sorted((tmp_path / "out").glob("painted_*.png"))
    assert [p.name for p in written] == ["painted_0.png", "painted_1.png"]
    assert Image.open(written[0]).size == Image.open(model_dir / "real.png").size


def test_paint_at_stage_0_exits_with_2_and_says_why(model_dir: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    painting = tmp_path / "painting.png"
    painting.write_bytes(encode(gradient(48, 40), "PNG"))
    assert (
        main(["--device", "cpu", "paint", str(model_dir), "--painting", str(painting), "--stage", "0"]) == 2
    )
    assert "stage must be between 1 and 2" in capsys.readouterr().err
