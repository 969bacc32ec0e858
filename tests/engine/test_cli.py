"""The CLI end to end on a tiny model, in-process."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from engine.cli import main
from tests.engine.images import encode, gradient


def test_train_sample_animate(tmp_path: Path) -> None:
    source = tmp_path / "scene.png"
    source.write_bytes(encode(gradient(48, 40), "PNG"))
    model_dir = tmp_path / "model"
    tiny = ["--stages", "2", "--iters", "3", "--max-size", "32", "--min-size", "16"]
    assert (
        main(["--device", "cpu", "train", str(source), "--out", str(model_dir), "--preset", "quick", *tiny])
        == 0
    )
    assert (model_dir / "model.safetensors").exists() and (model_dir / "stages" / "1.safetensors").exists()

    assert main(["--device", "cpu", "sample", str(model_dir), "-n", "3", "--size", "40x27"]) == 0
    samples = sorted((model_dir / "samples").glob("0*.png"))
    assert len(samples) == 3 and Image.open(samples[0]).size == (40, 27)

    gif = tmp_path / "walk.gif"
    assert main(["--device", "cpu", "animate", str(model_dir), "--out", str(gif), "--frames", "4"]) == 0
    assert Image.open(gif).n_frames == 4


def test_bad_input_exits_with_2_and_a_message(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    assert main(["train", str(bad), "--out", str(tmp_path / "m")]) == 2
    assert "not a supported image" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()  # no empty output folder left behind


def test_a_training_that_fails_after_starting_removes_its_empty_folder(
    tmp_path: Path, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import engine.cli

    source = tmp_path / "scene.png"
    source.write_bytes(encode(gradient(48, 40), "PNG"))

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError("the engine refused")

    monkeypatch.setattr(engine.cli, "train", broken)
    assert (
        main(["--device", "cpu", "train", str(source), "--out", str(tmp_path / "m"), "--preset", "quick"])
        == 2
    )
    assert not (tmp_path / "m").exists()
    assert "stage 1/4 iter    0/400" in capsys.readouterr().err  # the first progress line came at once


def test_harmonize_with_fine_tuning(tmp_path: Path) -> None:
    scene = tmp_path / "painting.png"
    scene.write_bytes(encode(gradient(48, 40), "PNG"))
    model_dir = tmp_path / "model"
    tiny = ["--stages", "2", "--iters", "2", "--max-size", "32", "--min-size", "16"]
    assert (
        main(
            [
                "--device",
                "cpu",
                "train",
                str(scene),
                "--out",
                str(model_dir),
                "--mode",
                "harmonization",
                *tiny,
            ]
        )
        == 0
    )
    naive, mask = gradient(60, 50), Image.new("L", (60, 50), 0)
    naive.paste((250, 20, 20), (10, 10, 25, 25))
    mask.paste(255, (10, 10, 25, 25))
    (tmp_path / "naive.png").write_bytes(encode(naive, "PNG"))
    (tmp_path / "mask.png").write_bytes(encode(mask, "PNG"))
    out = tmp_path / "out.png"
    args = ["--naive", str(tmp_path / "naive.png"), "--mask", str(tmp_path / "mask.png"), "--out", str(out)]
    assert (
        main(["--device", "cpu", "harmonize", str(model_dir), *args, "--fine-tune", "--fine-tune-iters", "2"])
        == 0
    )
    assert Image.open(out).size == (60, 50)
    assert (model_dir / "fine_tuned.safetensors").exists()
    by_composite = {}
    for composite in ("detail", "render"):
        args[-1] = str(tmp_path / f"{composite}.png")
        assert main(["--device", "cpu", "harmonize", str(model_dir), *args, "--composite", composite]) == 0
        by_composite[composite] = Image.open(args[-1]).convert("RGB")
    assert by_composite["detail"].size == by_composite["render"].size == (60, 50)
    assert by_composite["detail"].tobytes() != by_composite["render"].tobytes()


def test_train_with_sr_head_then_super_resolve(tmp_path: Path) -> None:
    source = tmp_path / "scene.png"
    source.write_bytes(encode(gradient(48, 40), "PNG"))
    model_dir = tmp_path / "model"
    tiny = ["--stages", "2", "--iters", "2", "--max-size", "32", "--min-size", "16"]
    sr = ["--sr", "--sr-preset", "tiny", "--sr-iters", "2", "--sr-factor", "2"]
    assert main(["--device", "cpu", "train", str(source), "--out", str(model_dir), *tiny, *sr]) == 0
    assert (model_dir / "sr_head.safetensors").exists()

    big = tmp_path / "big.png"
    assert main(["--device", "cpu", "super-resolve", str(model_dir), "--factor", "4", "--out", str(big)]) == 0
    assert Image.open(big).size == (128, 108)  # the 32x27 top image x4
    assert main(["super-resolve", str(model_dir), "--out", str(tmp_path / "v.png"), "-n", "2"]) == 0
    assert Image.open(tmp_path / "v_1.png").size == (64, 54)  # default factor: the head's x2

    retrain = ["train-sr", str(model_dir), "--factor", "3", "--preset", "tiny", "--iters", "2"]
    assert main(["--device", "cpu", *retrain]) == 0
    assert main(["super-resolve", str(model_dir), "--factor", "9", "--out", str(big)]) == 2  # out of range


def test_super_resolve_without_a_head_says_how_to_train_one(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "scene.png"
    source.write_bytes(encode(gradient(48, 40), "PNG"))
    model_dir = tmp_path / "model"
    tiny = ["--stages", "2", "--iters", "1", "--max-size", "32", "--min-size", "16"]
    assert main(["--device", "cpu", "train", str(source), "--out", str(model_dir), *tiny]) == 0
    assert main(["super-resolve", str(model_dir), "--out", str(tmp_path / "big.png")]) == 2
    assert "train-sr" in capsys.readouterr().err
