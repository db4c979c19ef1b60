"""``authenticity detect`` and ``authenticity detector eval|export`` end to end, on a tiny real detector.

The detector is timm's ``test_efficientnet`` on 32-pixel tiles, trained here for a few dozen
SGD steps to tell smooth-gradient images (real) from images carrying a one-pixel checkerboard
or 2× nearest-neighbour upsampling blocks (synthetic), and saved with ``save_detector``
(safetensors + cfg JSON with its SHA-256), exactly as a shipped model is. Commands run
in-process through Typer's runner, except the stdout-purity check, which runs the real
``python -m authenticity`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from numpy.typing import NDArray
from typer.testing import CliRunner, Result

from authenticity.cli.app import app
from authenticity.detection.config import DetectorCfg, load_cfg
from authenticity.detection.model import build_model, file_sha256, save_detector
from authenticity.detection.preprocess import normalize
from authenticity.detection.scoring import DetectionResult, Detector

LABELS = {"synthetic", "authentic-looking", "uncertain"}
GOOD = ("real.jpg", "fake.png", "gray.png", "rgba.png", "deep16.png", "clip.mp4")
BAD = {
    "corrupt.jpg": "media.decode.failed",
    "truncated.png": "media.decode.failed",
    "empty.png": "media.file.empty",
    "notes.txt": "media.type.unsupported",
    "tiny.png": "detection.image.too_small",
    "bomb.png": "media.image.too_large",
    "broken.mp4": "media.decode.failed",
}
VIDEO_FRAMES, VIDEO_FPS = 20, 10.0


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTHENTICITY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AUTHENTICITY_MAX_PIXELS", raising=False)


# -- synthetic media ----------------------------------------------------------------------------
def _real(rng: np.random.Generator, h: int, w: int) -> NDArray[np.uint8]:
    """Smooth gradients: a colour ramp plus blurred low-frequency blobs."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = np.stack([x / w, y / h, (x + y) / (w + h)], axis=-1) * rng.uniform(60, 160, 3) + rng.uniform(0, 60, 3)
    small = rng.uniform(-40, 40, (max(2, h // 12), max(2, w // 12), 3)).astype(np.float32)
    blobs = cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 2.0)
    return np.asarray(np.clip(ramp + blobs, 0, 255), dtype=np.uint8)


def _checker(rng: np.random.Generator, h: int, w: int) -> NDArray[np.uint8]:
    """A real-looking image carrying a one-pixel checkerboard (transposed-convolution artifact)."""
    yy, xx = np.mgrid[:h, :w]
    phase = int(rng.integers(0, 2))
    pattern = (((yy + xx + phase) % 2) * 2 - 1)[..., None] * 14
    return np.asarray(np.clip(_real(rng, h, w).astype(np.int16) + pattern, 0, 255), dtype=np.uint8)


def _upsampled(rng: np.random.Generator, h: int, w: int) -> NDArray[np.uint8]:
    """A noisy half-resolution image blown up 2× by pixel repetition (upsampling blocks)."""
    hh, hw = (h + 1) // 2, (w + 1) // 2
    half = _real(rng, hh, hw).astype(np.int16) + rng.integers(-24, 25, (hh, hw, 3))
    big = np.repeat(np.repeat(np.clip(half, 0, 255), 2, axis=0), 2, axis=1)[:h, :w]
    return np.ascontiguousarray(big, dtype=np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _write_video(path: Path, frames: list[NDArray[np.uint8]]) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), VIDEO_FPS, (w, h))
    assert writer.isOpened(), "OpenCV cannot write mp4v"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def _zero_mdat(data: bytes) -> bytes:
    """The same MP4 with every byte of coded video replaced by zeros (container intact)."""
    out, pos = bytearray(data), 0
    while pos + 8 <= len(out):
        size, kind = struct.unpack(">I", out[pos : pos + 4])[0], bytes(out[pos + 4 : pos + 8])
        if kind == b"mdat":
            out[pos + 8 : pos + size] = bytes(size - 8)
        pos += size
    assert bytes(out) != data, "no mdat box found"
    return bytes(out)


def _corrupt_jpeg(good: bytes, rng: np.random.Generator) -> bytes:
    """Headers (up to and including SOS) intact, the entropy-coded scan replaced by random bytes."""
    sos = good.index(b"\xff\xda")
    header_end = sos + 2 + struct.unpack(">H", good[sos + 2 : sos + 4])[0]
    return good[:header_end] + rng.bytes(len(good) - header_end - 2) + b"\xff\xd9"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = DetectorCfg(name="tiny-test-detector", arch="test_efficientnet", tile_size=32, max_tiles=4)
    torch.manual_seed(0)
    model = build_model(cfg)
    rng = np.random.default_rng(0)
    n = 32
    images = [_real(rng, 32, 32) for _ in range(2 * n)]
    images += [_checker(rng, 32, 32) for _ in range(n)] + [_upsampled(rng, 32, 32) for _ in range(n)]
    x = torch.from_numpy(normalize(np.stack(images), cfg))
    y = torch.tensor([0.0] * 2 * n + [1.0] * 2 * n)
    # BatchNorm in training mode: timm's init gives eval-mode features ~1e-3, too small for plain SGD.
    model.train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(30):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        optimiser.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimiser.step()
    # Running statistics = the exact statistics of the training set, so eval mode scores as trained.
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average
    with torch.no_grad():
        model(x)
    model.eval()
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_detector(model, cfg, path)
    return path


@pytest.fixture(scope="module")
def cfg(weights: Path) -> DetectorCfg:
    return load_cfg(weights.with_suffix(".json"))


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``good/``: files that score (incl. gray, RGBA, 16-bit PNG and an MP4); ``bad/``: one per error code."""
    root = tmp_path_factory.mktemp("media")
    good, bad = root / "good", root / "bad"
    good.mkdir()
    bad.mkdir()
    rng = np.random.default_rng(1)
    base = _real(rng, 48, 64)
    assert cv2.imwrite(str(good / "real.jpg"), base, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert cv2.imwrite(str(good / "fake.png"), _checker(rng, 48, 64))
    gray = cv2.cvtColor(_real(rng, 40, 56), cv2.COLOR_BGR2GRAY)
    assert cv2.imwrite(str(good / "gray.png"), gray)
    rgba = np.dstack([_upsampled(rng, 40, 56), rng.integers(0, 256, (40, 56), dtype=np.uint8)])
    assert cv2.imwrite(str(good / "rgba.png"), rgba)
    assert cv2.imwrite(str(good / "deep16.png"), _real(rng, 40, 56).astype(np.uint16) * 257)
    frames = [_real(np.random.default_rng(100 + i // 5), 48, 64) for i in range(VIDEO_FRAMES)]
    _write_video(good / "clip.mp4", frames)

    ok, buf = cv2.imencode(".jpg", base, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    (bad / "corrupt.jpg").write_bytes(_corrupt_jpeg(buf.tobytes(), rng))
    png = (good / "fake.png").read_bytes()
    (bad / "truncated.png").write_bytes(png[: len(png) // 2])
    (bad / "empty.png").write_bytes(b"")
    (bad / "notes.txt").write_text("meeting notes: not an image\n")
    assert cv2.imwrite(str(bad / "tiny.png"), np.full((1, 1, 3), 128, np.uint8))
    ihdr = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)  # 2.5 gigapixels, declared only
    chunks = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(bytes(64))) + _png_chunk(b"IEND", b"")
    (bad / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)
    (bad / "broken.mp4").write_bytes(_zero_mdat((good / "clip.mp4").read_bytes()))
    assert sorted(p.name for p in good.iterdir()) == sorted(GOOD)
    assert sorted(p.name for p in bad.iterdir()) == sorted(BAD)
    return root


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``real/`` (two sources) and ``fake/checker`` + ``fake/upsample`` for ``detector eval``."""
    root = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(2)
    layout = {("real", ""): _real, ("real", "phone"): _real, ("fake", "checker"): _checker,
              ("fake", "upsample"): _upsampled}  # fmt: skip
    for (kind, source), make in layout.items():
        folder = root / kind / source
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(3):
            assert cv2.imwrite(str(folder / f"{i}.png"), make(rng, 40, 56))
    return root


# -- helpers --------------------------------------------------------------------------------------
def invoke(*args: str | Path) -> Result:
    """Run the CLI in-process; any exception other than the command's own exit is a test failure."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args}: raised {result.exception!r}\n{result.output}") from result.exception
    assert "Traceback" not in result.output, result.output
    return result


def shown(result: Result) -> str:
    return f"exit {result.exit_code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def jsonl(result: Result | subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    """Every stdout line is a JSON object; keyed by file name."""
    lines = result.stdout.splitlines()
    objects = [json.loads(line) for line in lines]
    assert all(isinstance(o, dict) for o in objects)
    by_name = {Path(o["path"]).name: o for o in objects}
    assert len(by_name) == len(objects), "one line per file"
    return by_name


def assert_one_error(result: Result, code: str, exit_code: int = 2) -> None:
    """Exact exit code; stderr is exactly one ``error: <code>: ...`` line; stdout empty."""
    assert result.exit_code == exit_code, shown(result)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {code}: "), shown(result)
    assert result.stdout == "", shown(result)


def detect_jsonl(weights: Path, *paths: Path, extra: tuple[str, ...] = ()) -> tuple[Result, dict[str, dict[str, Any]]]:
    result = invoke("detect", "--format", "jsonl", "--weights", weights, *extra, *paths)
    return result, jsonl(result)


# -- detect --format jsonl ------------------------------------------------------------------------
def test_jsonl_stdout_is_exactly_one_object_per_file_in_a_real_subprocess(
    weights: Path, cfg: DetectorCfg, media: Path
) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "authenticity", "detect", "--format", "jsonl", "--weights", str(weights), str(media)],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr  # some files failed
    by_name = jsonl(proc)
    assert len(proc.stdout.splitlines()) == len(GOOD) + len(BAD)
    assert list(by_name) == sorted(BAD) + sorted(GOOD)  # folders walked in sorted order
    assert proc.stdout.endswith("}\n")
    for name, obj in by_name.items():
        assert {"path", "score", "label", "model", "kind"} <= obj.keys(), obj
        assert obj["model"]["name"] == cfg.name == "tiny-test-detector"
        assert obj["model"]["weights_sha256"] == cfg.weights_sha256 == file_sha256(weights)
        if name in BAD:
            assert obj["score"] is None and obj["label"] is None and obj["error"]["code"] == BAD[name], obj
        else:
            assert "error" not in obj, obj
            assert 0.0 <= obj["score"] <= 1.0 and obj["label"] in LABELS, obj
    assert by_name["clip.mp4"]["kind"] == "video"
    assert all(by_name[n]["kind"] == "image" for n in GOOD if n != "clip.mp4")


def test_jsonl_scores_every_good_file_and_exits_0(weights: Path, cfg: DetectorCfg, media: Path) -> None:
    result, by_name = detect_jsonl(weights, media / "good")
    assert result.exit_code == 0, shown(result)
    assert set(by_name) == set(GOOD)
    for obj in by_name.values():
        assert obj["score"] is not None and 0.0 <= obj["score"] <= 1.0 and obj["label"] in LABELS
        assert obj["label"] == cfg.label_for(obj["score"]).value


def test_a_folder_of_links_is_scored_like_the_folders_it_links_to(weights: Path, media: Path, tmp_path: Path) -> None:
    links = tmp_path / "links"
    links.mkdir()
    (links / "good").symlink_to(media / "good", target_is_directory=True)
    (links / "again").symlink_to(media / "good", target_is_directory=True)  # the same folder twice: once
    (links / "loop").symlink_to(links, target_is_directory=True)
    result, by_name = detect_jsonl(weights, links)
    assert result.exit_code == 0, shown(result)
    assert len(result.stdout.splitlines()) == len(GOOD) and set(by_name) == set(GOOD)


def test_jsonl_video_has_per_frame_scores(weights: Path, media: Path) -> None:
    result, by_name = detect_jsonl(weights, media / "good" / "clip.mp4", extra=("--fps", "2"))
    assert result.exit_code == 0, shown(result)
    video = by_name["clip.mp4"]
    assert video["kind"] == "video"
    frames = video["frames"]
    # 20 frames at 10 fps sampled at 2 fps: every 5th frame
    assert [f["index"] for f in frames] == [0, 5, 10, 15]
    assert [f["time_s"] for f in frames] == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert all(0.0 <= f["score"] <= 1.0 and f["faces"] == 0 for f in frames)
    # the video's score is the calibrated median of its frames' logits: between the extremes
    scores = [f["score"] for f in frames]
    assert min(scores) - 1e-6 <= video["score"] <= max(scores) + 1e-6
    capped, capped_by_name = detect_jsonl(
        weights, media / "good" / "clip.mp4", extra=("--fps", "10", "--max-frames", "3")
    )
    assert capped.exit_code == 0, shown(capped)
    assert [f["index"] for f in capped_by_name["clip.mp4"]["frames"]] == [0, 10, 19]


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_reports_its_error_code_while_the_others_are_scored(weights: Path, media: Path, name: str) -> None:
    good = media / "good"
    result, by_name = detect_jsonl(weights, good / "real.jpg", media / "bad" / name, good / "fake.png")
    assert result.exit_code == 2, shown(result)
    assert list(by_name) == ["real.jpg", name, "fake.png"]  # input order kept
    error = by_name[name]
    assert error["score"] is None and error["label"] is None
    assert error["error"]["code"] == BAD[name], error
    assert error["error"]["message"]
    for other in ("real.jpg", "fake.png"):
        assert by_name[other]["score"] is not None and "error" not in by_name[other]


def test_missing_input_path_is_reported_per_file(weights: Path, media: Path, tmp_path: Path) -> None:
    result, by_name = detect_jsonl(weights, tmp_path / "gone.jpg", media / "good" / "real.jpg")
    assert result.exit_code == 2, shown(result)
    assert by_name["gone.jpg"]["error"]["code"] == "media.file.not_found"
    assert by_name["real.jpg"]["score"] is not None


def test_bomb_png_is_refused_from_its_header(weights: Path, media: Path) -> None:
    result, by_name = detect_jsonl(weights, media / "bad" / "bomb.png")
    assert result.exit_code == 2
    message = by_name["bomb.png"]["error"]["message"]
    assert by_name["bomb.png"]["error"]["code"] == "media.image.too_large"
    assert "2500000000" in message or "50000x50000" in message, message


def test_failed_video_is_reported_as_kind_video(weights: Path, media: Path) -> None:
    _, by_name = detect_jsonl(weights, media / "bad" / "broken.mp4")
    assert by_name["broken.mp4"]["error"]["code"] == "media.decode.failed"
    assert by_name["broken.mp4"]["kind"] == "video"


def test_gray_rgba_and_16bit_png_score_like_their_8bit_bgr_equivalents(
    weights: Path, media: Path, tmp_path: Path
) -> None:
    good = media / "good"
    gray = cv2.imread(str(good / "gray.png"), cv2.IMREAD_UNCHANGED)
    rgba = cv2.imread(str(good / "rgba.png"), cv2.IMREAD_UNCHANGED)
    deep = cv2.imread(str(good / "deep16.png"), cv2.IMREAD_UNCHANGED)
    assert gray is not None and rgba is not None and deep is not None
    assert gray.ndim == 2 and rgba.shape[2] == 4 and deep.dtype == np.uint16
    plain = tmp_path / "plain"
    plain.mkdir()
    assert cv2.imwrite(str(plain / "gray.png"), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    assert cv2.imwrite(str(plain / "rgba.png"), np.ascontiguousarray(rgba[:, :, :3]))  # alpha dropped
    assert cv2.imwrite(str(plain / "deep16.png"), (deep // 257).astype(np.uint8))
    names = ("gray.png", "rgba.png", "deep16.png")
    result, ours = detect_jsonl(weights, *(good / n for n in names))
    assert result.exit_code == 0, shown(result)
    _, theirs = detect_jsonl(weights, *(plain / n for n in names))
    for name in names:
        assert ours[name]["score"] == pytest.approx(theirs[name]["score"], abs=1e-6), name


# -- plots, table -----------------------------------------------------------------------------------
def test_plot_writes_a_heatmap_per_image_and_a_timeline_per_video(weights: Path, media: Path, tmp_path: Path) -> None:
    plots = tmp_path / "plots" / "nested"
    result = invoke("detect", "--format", "jsonl", "--weights", weights, "--plot", plots,
                    media / "good" / "real.jpg", media / "good" / "rgba.png", media / "good" / "clip.mp4",
                    media / "bad" / "tiny.png")  # fmt: skip
    assert result.exit_code == 2, shown(result)
    written = sorted(p.name for p in plots.iterdir())
    assert written == ["clip.mp4.timeline.png", "real.jpg.heatmap.png", "rgba.png.heatmap.png"]  # none for the error
    for name in written:
        image = cv2.imread(str(plots / name))
        assert image is not None and min(image.shape[:2]) > 100, name


def test_table_format_prints_a_table_on_stdout_and_a_summary_on_stderr(
    weights: Path, cfg: DetectorCfg, media: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(media)  # short relative paths: the table is not ellipsised
    result = invoke("detect", "--weights", weights, Path("good") / "real.jpg", Path("good") / "clip.mp4",
                    Path("bad") / "empty.png")  # fmt: skip
    assert result.exit_code == 2, shown(result)
    out = result.stdout
    for word in ("path", "score", "label", "detail", "good/real.jpg", "good/clip.mp4", "bad/empty.png",
                 "media.file.empty", "4 tiles", "2 frames", "error"):  # fmt: skip
        assert word in out, f"{word!r} missing\n{shown(result)}"
    assert not out.lstrip().startswith("{")
    summary = [line for line in result.stderr.splitlines() if line.strip()]
    assert summary == [f"model {cfg.name} ({cfg.weights_sha256[:12]}…), 2 scored, 1 failed"], shown(result)


def test_table_shows_bracketed_file_names_verbatim(weights: Path, media: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    folder = tmp_path / "shots"
    folder.mkdir()
    shutil.copy(media / "good" / "fake.png", folder / "take[v2].png")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["detect", "--weights", str(weights), "shots"])
    assert result.exit_code == 0, shown(result)
    assert "shots/take[v2].png" in result.stdout, shown(result)


def test_table_does_not_crash_on_a_path_that_looks_like_a_closing_markup_tag(
    weights: Path, media: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "raw["
    folder.mkdir()
    shutil.copy(media / "good" / "fake.png", folder / "x].png")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["detect", "--weights", str(weights), "raw["])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 0, shown(result)
    assert "raw[/x].png" in result.stdout


# -- weights and cfg errors -----------------------------------------------------------------------
def _copy_model(weights: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(weights, folder / weights.name)
    shutil.copy(weights.with_suffix(".json"), folder / weights.with_suffix(".json").name)
    return folder / weights.name


def test_weights_not_matching_the_cfg_sha256_is_one_line_error(weights: Path, media: Path, tmp_path: Path) -> None:
    tampered = _copy_model(weights, tmp_path / "m")
    data = bytearray(tampered.read_bytes())
    data[-1] ^= 0x01  # one bit in the last tensor's bytes
    tampered.write_bytes(bytes(data))
    assert_one_error(invoke("detect", "--weights", tampered, media / "good" / "real.jpg"), "detector.weights.mismatch")


def test_cfg_with_unknown_version_is_one_line_error(weights: Path, media: Path, tmp_path: Path) -> None:
    copy = _copy_model(weights, tmp_path / "m")
    cfg_path = copy.with_suffix(".json")
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "version": 99}))
    assert_one_error(invoke("detect", "--weights", copy, media / "good" / "real.jpg"), "detector.cfg.invalid")


def test_missing_weights_beside_their_cfg_is_one_line_error(weights: Path, media: Path, tmp_path: Path) -> None:
    copy = _copy_model(weights, tmp_path / "m")
    copy.unlink()
    assert_one_error(invoke("detect", "--weights", copy, media / "good" / "real.jpg"), "detector.weights.not_found")


def test_mistyped_weights_path_reports_the_weights_missing(media: Path, tmp_path: Path) -> None:
    missing = tmp_path / "typo.safetensors"
    assert_one_error(invoke("detect", "--weights", missing, media / "good" / "real.jpg"), "detector.weights.not_found")


def test_zero_fps_or_frames_is_a_usage_error(weights: Path, media: Path) -> None:
    clip = media / "good" / "clip.mp4"
    assert_one_error(invoke("detect", "--weights", weights, "--fps", "0", clip), "usage.video.sampling")
    assert_one_error(invoke("detect", "--weights", weights, "--max-frames", "0", clip), "usage.video.sampling")


# -- ONNX -------------------------------------------------------------------------------------------
def test_onnx_export_then_detect_matches_torch_runtime(weights: Path, media: Path, tmp_path: Path) -> None:
    onnx_path = tmp_path / "export" / "tiny.onnx"
    exported = invoke("detector", "export", "--onnx", onnx_path, "--weights", weights)
    assert exported.exit_code == 0, shown(exported)
    assert onnx_path.is_file() and onnx_path.with_suffix(".json").is_file()
    assert load_cfg(onnx_path.with_suffix(".json")).weights_sha256 == file_sha256(onnx_path)
    files = [media / "good" / n for n in GOOD] + [media / "bad" / "tiny.png"]
    torch_run, torch_scores = detect_jsonl(weights, *files)
    onnx_run, onnx_scores = detect_jsonl(onnx_path, *files, extra=("--runtime", "onnx"))
    assert torch_run.exit_code == onnx_run.exit_code == 2, shown(onnx_run)
    assert list(onnx_scores) == list(torch_scores)
    for name, theirs in torch_scores.items():
        ours = onnx_scores[name]
        if theirs["score"] is None:
            assert ours["error"] == theirs["error"]
            continue
        assert ours["score"] == pytest.approx(theirs["score"], abs=1e-3), name
        near_an_edge = any(abs(theirs["score"] - edge) < 1e-3 for edge in (0.35, 0.5, 0.65))
        assert ours["label"] == theirs["label"] or near_an_edge, name
        assert ours["model"]["runtime"] == "onnxruntime"
        assert ours["model"]["weights_sha256"] == file_sha256(onnx_path)
    frames = [f["score"] for f in onnx_scores["clip.mp4"]["frames"]]
    assert frames == pytest.approx([f["score"] for f in torch_scores["clip.mp4"]["frames"]], abs=1e-3)
    # --undo-enlargement reaches the ONNX runtime too
    still = media / "good" / "real.jpg"
    _, undone = detect_jsonl(onnx_path, still, extra=("--runtime", "onnx", "--undo-enlargement"))
    assert undone["real.jpg"]["model"]["undo_enlargement"] == "on" and undone["real.jpg"]["enlargement"] >= 1.0
    assert "enlargement" not in onnx_scores["real.jpg"]


def test_onnx_runtime_without_weights_is_a_usage_error(media: Path) -> None:
    assert_one_error(invoke("detect", "--runtime", "onnx", media / "good" / "real.jpg"), "usage.onnx.path")


# -- detector eval ----------------------------------------------------------------------------------
def test_eval_prints_markdown_and_writes_report_and_figures(weights: Path, labelled: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = invoke("detector", "eval", "--real", labelled / "real", "--fake", labelled / "fake", "--weights", weights,
                    "--out", out)  # fmt: skip
    assert result.exit_code == 0, shown(result)
    assert result.stdout.startswith("# Detector evaluation: tiny-test-detector (test_efficientnet)")
    for text in ("## Overall", "## Per source", "| fake | checker |", "| fake | upsample |", "| real | phone |"):
        assert text in result.stdout, text
    report = json.loads((out / "report.json").read_text())
    assert report["overall"]["n_real"] == 6 and report["overall"]["n_fake"] == 6 and report["n_failed"] == 0
    rows = {(r["kind"], r["source"]): r for r in report["sources"]}
    assert set(rows) == {("real", "default"), ("real", "phone"), ("fake", "checker"), ("fake", "upsample")}
    assert all(rows[k]["n"] == 3 for k in rows)
    assert rows[("fake", "checker")]["auc"] is not None and rows[("real", "phone")]["auc"] is None
    assert report["overall"]["auc"] >= 0.9  # the tiny detector does separate the classes
    assert report["model"]["weights_sha256"] == file_sha256(weights)
    assert result.stdout.rstrip("\n") == (out / "report.md").read_text().rstrip("\n")
    for name in ("roc.png", "reliability.png"):
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[0] > 100, name


def test_eval_rejects_unknown_attack_and_missing_folder(weights: Path, labelled: Path, tmp_path: Path) -> None:
    real, fake = labelled / "real", labelled / "fake"
    bogus = invoke("detector", "eval", "--real", real, "--fake", fake, "--weights", weights, "--attack", "bogus")
    assert_one_error(bogus, "usage.eval.attack")
    missing = invoke("detector", "eval", "--real", real, "--fake", tmp_path / "nope", "--weights", weights)
    assert_one_error(missing, "usage.eval.folder")


# -- Python API --------------------------------------------------------------------------------------
def test_python_api_score_path_matches_the_cli(weights: Path, media: Path) -> None:
    files = [media / "good" / n for n in GOOD]
    _, by_name = detect_jsonl(weights, *files)
    detector = Detector.load(weights)
    for path in files:
        result = detector.score_path(path)
        assert isinstance(result, DetectionResult) and result.error is None
        assert result.score == pytest.approx(by_name[path.name]["score"], abs=1e-5), path.name
        assert result.label is not None and result.label.value == by_name[path.name]["label"]
        assert result.to_dict()["model"] == by_name[path.name]["model"]


@pytest.mark.parametrize("batch_size", [32, 3])
def test_score_does_not_depend_on_batching_across_files(weights: Path, media: Path, batch_size: int) -> None:
    files = [media / "good" / n for n in GOOD] + [media / "bad" / "tiny.png", media / "good" / "real.jpg"]
    detector = Detector.load(weights, batch_size=batch_size)
    together = list(detector.score_paths(files))
    assert [r.path for r in together] == [str(p) for p in files]
    for path, batched in zip(files, together, strict=True):
        alone = detector.score_path(path)
        assert (alone.error is None) == (batched.error is None), path.name
        if alone.error is not None:
            assert alone.error == batched.error
            continue
        assert batched.score == pytest.approx(alone.score, abs=1e-5), path.name
        assert [t.score for t in batched.tiles] == pytest.approx([t.score for t in alone.tiles], abs=1e-5)
    assert together[0].score == pytest.approx(together[-1].score, abs=1e-5)  # same file, two places in the batch


def test_eval_stdout_keeps_bracketed_source_names(weights: Path, labelled: Path, tmp_path: Path) -> None:
    fake = tmp_path / "fake"
    shutil.copytree(labelled / "fake" / "checker", fake / "[sdxl]")
    out = tmp_path / "report"
    result = invoke("detector", "eval", "--real", labelled / "real", "--fake", fake, "--weights", weights, "--out", out)
    assert result.exit_code == 0, shown(result)
    assert "| fake | [sdxl] |" in (out / "report.md").read_text()
    assert "| fake | [sdxl] |" in result.stdout, shown(result)


@pytest.mark.parametrize("shape", [{"depth": 2}, {"input_transform": "npr"}], ids=["truncated", "npr"])
def test_a_truncated_or_npr_network_exports_to_onnx_with_the_same_logits(tmp_path: Path, shape: dict) -> None:
    from authenticity.detection.model import save_detector
    from authenticity.detection.onnx_runtime import OnnxDetector, export_onnx
    from authenticity.detection.scoring import Detector

    cfg = DetectorCfg(name="tiny-local", arch="test_efficientnet", tile_size=32, max_tiles=4, **shape)
    torch.manual_seed(0)
    save_detector(build_model(cfg).eval(), cfg, tmp_path / "local.safetensors")
    onnx_path = export_onnx(tmp_path / "local.safetensors", tmp_path / "onnx" / "local.onnx")
    tiles = normalize(np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8), cfg)
    ours = OnnxDetector.load(onnx_path).tile_logits(tiles)
    with torch.inference_mode():
        theirs = Detector.load(tmp_path / "local.safetensors").tile_logits(tiles)
    assert ours.shape == (5,)
    assert ours == pytest.approx(theirs, abs=1e-4)
