"""Shared fixtures: a fresh home per test, real SQLite files, real PostgreSQL databases.

PostgreSQL tests create a throw-away database on the server named by
``AUTHENTICITY_TEST_POSTGRES_URL`` (default: 127.0.0.1:5432, database ``test``, trust
auth) and drop it afterwards. When the server is unreachable they are skipped locally,
but fail in CI (``CI=true``), where the server is part of the contract.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from authenticity.config import Settings

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
# a test that trains on ../shared's photos (a --quick workdir); they are on dev and CI machines only
NEEDS_SHARED_PHOTOS = pytest.mark.skipif(not (SHARED / "data" / "photos").is_dir(),
                                         reason="../shared/data absent (dev/CI machines only)")  # fmt: skip
PG_ADMIN_URL = os.environ.get("AUTHENTICITY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PASSPHRASE = "correct horse battery staple"


def _pg_admin_engine():  # type: ignore[no-untyped-def]
    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Detector tests use tiny tensors: threads gain nothing, and on a shared 2-core machine two
    spinning OpenMP threads made single tests up to 30x slower. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def pg_available() -> bool:
    try:
        with _pg_admin_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required in CI: {exc}")
        return False


@pytest.fixture
def pg_url(pg_available: bool) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    if not pg_available:
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    name = f"authenticity_test_{uuid.uuid4().hex[:12]}"
    admin = _pg_admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        from authenticity.registry import store

        for key, engine in list(store._ENGINES.items()):
            if name in key[0]:
                engine.dispose()
                del store._ENGINES[key]
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on a real SQLite file and on a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> Path:
    """An isolated AUTHENTICITY_HOME with the database under test and a passphrase set."""
    home = tmp_path / "home"
    monkeypatch.setenv("AUTHENTICITY_HOME", str(home))
    monkeypatch.setenv("AUTHENTICITY_DATABASE_URL", db_url)
    monkeypatch.setenv("AUTHENTICITY_KEY_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("AUTHENTICITY_DB_TIMEOUT", "5")
    return home


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings()


def write_photo(path: Path, seed: int = 0, size: tuple[int, int] = (96, 128)) -> Path:
    """A real JPEG decoded by OpenCV: smooth gradient plus seeded shapes and noise."""
    rng = np.random.default_rng(seed)
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, (x + y) * 100 // (w + h) + 50], axis=-1).astype(np.uint8)
    for _ in range(4):
        c = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, c, int(rng.integers(5, 30)), [int(v) for v in rng.integers(0, 256, 3)], -1)
    img = cv2.add(img, rng.integers(0, 8, img.shape, dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    ext = path.suffix.lower()
    ok = cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 90] if ext in (".jpg", ".jpeg") else [])
    assert ok, path
    return path


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return write_photo(tmp_path / "media" / "photo.jpg", seed=1)


class _TrainCaptured(Exception):
    """Raised in place of training once `detector train` has built its parameters."""


def train_params(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], fetch: bool = False):  # type: ignore[no-untyped-def]
    """The ``PipelineParams`` that ``authenticity detector train ARGS`` would train with (nothing is trained).

    A full-recipe run fetches the extra real photos from the package index and the esrgan
    family's generator from npm first; unless ``fetch``, ``--no-extra-real`` is added where ARGS
    name neither ``--quick`` nor a folder, and ``--no-sr-family`` where they name neither
    ``--quick`` nor an esrgan flag and the workdir holds no ``sr_model`` (nothing to fetch then).
    """
    from typer.testing import CliRunner

    from authenticity.cli.app import app
    from authenticity.detection.train import pipeline

    asked = []

    def capture(params: pipeline.PipelineParams) -> None:
        asked.append(params)
        raise _TrainCaptured

    monkeypatch.setattr(pipeline, "run_training", capture)
    if not fetch and not {"--quick", "--extra-real", "--no-extra-real"} & set(args):
        args = [*args, "--no-extra-real"]
    sr_asked = {"--quick", "--sr-family", "--no-sr-family"} & set(args)
    if not fetch and not sr_asked and not (tmp_path / "w" / "sr_model").exists():
        args = [*args, "--no-sr-family"]
    result = CliRunner().invoke(app, ["detector", "train", "--workdir", str(tmp_path / "w"),
                                      "--out", str(tmp_path / "d.safetensors"), *args])  # fmt: skip
    assert isinstance(result.exception, _TrainCaptured), result.output
    assert len(asked) == 1
    return asked[0]


@pytest.fixture
def one_omp_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenMP (torch, OpenCV) on one thread unless the run asked otherwise: the slow training tests share 2 cores."""
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
