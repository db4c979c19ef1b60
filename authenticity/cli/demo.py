"""``authenticity demo``: sign a sample original, verify it, verify a tampered copy.

Runs on whatever registry the settings name (by default the embedded SQLite file).
The sample photo is drawn here rather than shipped, so every run signs new content.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import typer
from rich.table import Table

from authenticity.cli._common import out_console, settings
from authenticity.cli._errors import EXIT_BAD, guarded
from authenticity.provenance.capture import Signer
from authenticity.provenance.keys import Algorithm
from authenticity.provenance.keystore import create_signer_key
from authenticity.provenance.sidecar import sidecar_path
from authenticity.registry import db, repository
from authenticity.registry.store import open_registry
from authenticity.verify import VerdictState, Verifier

DEMO_SIGNER = "demo-camera"
# Demo only: a real capture device keeps its passphrase in the platform keystore.
_DEMO_PASSPHRASE = b"demo-passphrase-not-secret"


def _draw_sample(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    h, w = 480, 640
    y, x = np.mgrid[0:h, 0:w]
    img: np.ndarray = np.stack([x * 255 // w, y * 255 // h, (x + y) * 127 // (w + h) + 64], axis=-1).astype(np.uint8)
    for _ in range(12):
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.circle(img, center, int(rng.integers(10, 80)), color, -1, lineType=cv2.LINE_AA)
    img = cv2.add(img, rng.integers(0, 12, img.shape, dtype=np.uint8))
    cv2.putText(img, datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"), (20, 460),
                cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2)  # fmt: skip
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 92])


def _tamper(original: Path, copy: Path) -> None:
    """Copy the photo and its sidecar, then paint over a region (still a valid JPEG)."""
    img = cv2.imread(str(original))
    assert img is not None, original
    cv2.rectangle(img, (200, 150), (320, 260), (0, 0, 255), -1)
    cv2.imwrite(str(copy), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    shutil.copyfile(sidecar_path(original), sidecar_path(copy))


def _derive(original: Path, copy: Path) -> None:
    """What a platform typically does to an upload: downscale by half and re-encode at JPEG q=80."""
    img = cv2.imread(str(original))
    assert img is not None, original
    small = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(copy), small, [cv2.IMWRITE_JPEG_QUALITY, 80])


def _detector_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        out_console.print("detector: not installed (pip install -e '.[detect]'); verdicts use provenance only")
        return False
    return True


@guarded
def demo(
    workdir: Path | None = typer.Option(None, "--workdir", help="Folder for the sample files (default: HOME/demo)."),
) -> None:
    """Sign a sample original, verify it, verify a tampered copy, and print the verdicts."""
    cfg = settings()
    folder = workdir or cfg.home / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    engine = open_registry(cfg)
    passphrase = cfg.key_passphrase.get_secret_value().encode() if cfg.key_passphrase else _DEMO_PASSPHRASE
    with db.session_scope(engine) as session:
        exists = repository.find_signer(session, DEMO_SIGNER) is not None
    if not exists:
        key = create_signer_key(cfg, DEMO_SIGNER, Algorithm.ED25519, passphrase)
        with db.session_scope(engine) as session:
            repository.add_signer(session, DEMO_SIGNER, key.public_key, datetime.now(UTC))
        out_console.print(f"created signer {DEMO_SIGNER} (key in {cfg.keys_dir})")
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
    original = folder / f"original-{stamp}.jpg"
    tampered = folder / f"tampered-{stamp}.jpg"
    _draw_sample(original, seed=time.time_ns() % (2**32))
    result = Signer(cfg, DEMO_SIGNER, passphrase).sign(original, claims={"source": "authenticity demo"})
    out_console.print(f"signed {original.name}: record {result.record_id}, log leaf {result.leaf_index}, "
                      f"sidecar {result.sidecar.name}")  # fmt: skip
    _tamper(original, tampered)
    derived = folder / f"derived-{stamp}.jpg"
    _derive(original, derived)
    verifier = Verifier(cfg, detector=_detector_available())
    table = Table("file", "verdict", "P(synthetic)", "status codes", title=f"database: {engine.url.render_as_string()}")
    verdicts = {}
    for path in (original, derived, tampered):
        verdict = verifier.verify(path)
        verdicts[path] = verdict.state
        score = verdict.detection.score if verdict.detection is not None else None
        table.add_row(path.name, verdict.state.value, "-" if score is None else f"{score:.3f}",
                      "\n".join(verdict.codes))  # fmt: skip
    out_console.print(table)
    expected = {original: VerdictState.AUTHENTIC, derived: VerdictState.AUTHENTIC_DERIVATIVE,
                tampered: VerdictState.TAMPERED}  # fmt: skip
    if verdicts != expected:
        out_console.print("[red]demo FAILED: unexpected verdicts[/]")
        raise typer.Exit(EXIT_BAD)
    out_console.print(
        "demo OK: the original verifies as authentic, its re-encoded copy as an authentic derivative, "
        "the edited copy (with the original's sidecar) as tampered"
    )
