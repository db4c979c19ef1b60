"""``authenticity audit …`` end to end, and its refusals as real subprocesses.

The happy path signs a photo, makes a tampered copy that carries the original's sidecar, and runs
``audit flag`` on both: only the copy is queued. Review, check and exports follow through the same
CLI (in-process, for speed). Each refusal runs ``python -m authenticity audit …`` and must print one
``error: <code>: …`` line, exit 2, show no traceback and leave every database row and file unchanged;
state-dependent refusals run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest
from sqlalchemy import text, update
from typer.testing import CliRunner

from authenticity.audit import workflow
from authenticity.cli.app import app
from authenticity.config import Settings
from authenticity.media import sha256_file
from authenticity.provenance.sidecar import sidecar_path
from authenticity.registry import db, store
from authenticity.registry.models import AuditEvent
from authenticity.registry.store import open_registry
from authenticity.verify import Detection, Verdict, VerdictState

from .conftest import write_photo
from .test_cli_bad_input import Snapshot, assert_error, assert_nothing_written, run_cli, snapshot

EXIT_USAGE = 2
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def cli(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (args, result.output, result.exception)
    return result.stdout


def _tampered_copy(original: Path, copy: Path) -> Path:
    """An edited copy that still carries the original's sidecar (a valid JPEG)."""
    img = cv2.imread(str(original))
    assert img is not None, original
    cv2.rectangle(img, (10, 10), (50, 40), (0, 0, 255), -1)
    assert cv2.imwrite(str(copy), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    shutil.copyfile(sidecar_path(original), sidecar_path(copy))
    return copy


def test_flag_review_check_and_export_through_the_cli(settings: Settings, photo: Path, tmp_path: Path) -> None:
    cli("signer", "create", "cam-1")
    cli("sign", str(photo), "--signer", "cam-1")
    tampered = _tampered_copy(photo, photo.parent / "tampered.jpg")
    out = cli("audit", "flag", str(photo), str(tampered), "--no-detector", "--actor", "ops")
    assert f"not flagged {photo}: authentic" in out
    assert f"flagged {tampered}: item 1 (tampered)" in out
    other = write_photo(tmp_path / "upload" / "other.jpg", seed=9)
    assert "reported: item 2 (open, seen 1x)" in cli("audit", "report", str(other), "--reason", "face looks off")
    assert "seen 2x" in cli("audit", "report", "--digest", sha256_file(other), "--reason", "again")

    listed = [json.loads(line) for line in cli("audit", "list", "--json").splitlines()]
    assert [(i["id"], i["reasons"], i["state"]) for i in listed] == [(1, ["tampered"], "tampered"),
                                                                     (2, ["report"], None)]  # fmt: skip
    assert [i["id"] for i in map(json.loads, cli("audit", "list", "--json", "--reason", "report").splitlines())] == [2]
    assert "tampered" in cli("audit", "list", "--status", "open")

    assert "item 1: claimed by ana" in cli("audit", "claim", "1", "--reviewer", "ana")
    assert "item 2: claimed by bob" in cli("audit", "claim", "2", "--reviewer", "bob")
    assert "item 2: open" in cli("audit", "release", "2", "--reviewer", "bob")
    decided = cli("audit", "decide", "1", "--reviewer", "ana", "--decision", "manipulated", "--note", "red patch")
    assert "item 1: decided (manipulated) by ana" in decided

    shown = json.loads(cli("audit", "show", "1", "--json"))
    assert [(e["actor"], e["action"]) for e in shown["history"]] == [("ops", "flagged"), ("ana", "claimed"),
                                                                     ("ana", "decided")]  # fmt: skip
    assert shown["verdict"]["state"] == "tampered" and shown["media_path"].endswith(".jpg")
    assert "red patch" in cli("audit", "show", "1")
    assert "audit chain OK: 7 events, 2 items checked, 0 problems" in cli("audit", "check")

    cli("audit", "export", "--format", "csv", "--out", str(tmp_path / "q.csv"))
    assert (tmp_path / "q.csv").read_text().splitlines()[0].startswith("id,content_digest,")
    cli("audit", "export", "--format", "json", "--out", str(tmp_path / "q.json"))
    assert json.loads((tmp_path / "q.json").read_text())["chain_head"]["seq"] == 7
    # "manipulated" is not a detector label: nothing to write, and the command says so.
    assert "wrote 0 real and 0 fake" in cli("audit", "export-labelled", str(tmp_path / "labelled"))


def test_check_exits_1_naming_the_problem(settings: Settings, photo: Path) -> None:
    engine = open_registry(settings)
    verdict = Verdict(str(photo), VerdictState.LIKELY_SYNTHETIC, (), sha256_file(photo),
                      detection=Detection(0.9, "synthetic", {}))  # fmt: skip
    with db.session_scope(engine) as session:
        workflow.flag_verdict(session, settings, verdict, media=photo, actor="cli")
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_event_no_update"))
        else:
            conn.execute(text("DROP TRIGGER audit_event_append_only ON audit_event"))
        conn.execute(update(AuditEvent).values(actor="mallory"))
    result = CliRunner().invoke(app, ["audit", "check"])
    assert result.exit_code == 1, result.output
    assert "audit.event.hash_mismatch: event 1 was edited" in result.stderr
    assert "audit chain FAILED" in result.stdout


# --------------------------------------------------------------------------- refusals (subprocesses)


@dataclass(frozen=True)
class Queue:
    """Item 1: photo.jpg, claimed by ana. Item 2: other.jpg, decided by bob. Item 3: third.jpg, open."""

    home: Path
    media: Path
    before: Snapshot


def _release_engines() -> None:
    """Close this process's pooled connections so the subprocess meets no lock of ours."""
    for key, engine in list(store._ENGINES.items()):
        engine.dispose()
        del store._ENGINES[key]


@pytest.fixture
def queue(settings: Settings, photo: Path, tmp_path: Path) -> Iterator[Queue]:
    engine = open_registry(settings)
    paths = [photo, write_photo(photo.parent / "other.jpg", seed=2), write_photo(photo.parent / "third.jpg", seed=3)]
    (photo.parent / "notes.txt").write_text("not media")
    (photo.parent / "empty").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with db.session_scope(engine) as session:
        for path in paths:
            verdict = Verdict(str(path), VerdictState.LIKELY_SYNTHETIC, (), sha256_file(path))
            workflow.flag_verdict(session, settings, verdict, media=path, actor="cli")
        workflow.claim(session, settings, 1, "ana")
        workflow.claim(session, settings, 2, "bob")
        workflow.decide(session, settings, 2, "bob", "confirmed-synthetic", "obvious")
    _release_engines()
    yield Queue(settings.home, photo.parent, snapshot(settings.home, photo.parent))
    _release_engines()


# Arguments after ``audit``; ``{media}`` is the folder holding the queued photos, ``{tmp}`` its parent.
STATEFUL = [
    ("show 99", "audit.item.not_found"),
    ("claim 99 --reviewer ana", "audit.item.not_found"),
    ("claim 1 --reviewer bob", "audit.item.claimed"),
    ("release 1 --reviewer bob", "audit.item.not_claimed"),
    ("release 3 --reviewer ana", "audit.item.not_claimed"),
    ("decide 1 --reviewer bob --decision manipulated --note x", "audit.item.not_claimed"),
    ("decide 3 --reviewer ana --decision manipulated --note x", "audit.item.not_claimed"),
    ("claim 2 --reviewer ana", "audit.item.decided"),
    ("decide 2 --reviewer bob --decision manipulated --note x", "audit.item.decided"),
    ("report --digest sha256:" + "ab" * 32 + " --reason fake", "audit.item.not_found"),
]
INPUT = [
    ("show one", "usage.item_id.invalid"),
    ("claim 1e3 --reviewer ana", "usage.item_id.invalid"),
    ("claim 1 --reviewer=", "usage.actor.invalid"),
    ("list --status closed", "usage.status.invalid"),
    ("list --reason odd", "usage.reason.invalid"),
    ("list --limit 0", "usage.limit.invalid"),
    ("decide 1 --reviewer ana --decision fake --note x", "usage.decision.invalid"),
    ("decide 1 --reviewer ana --decision manipulated --note=", "usage.note.required"),
    ("report {media}/missing.jpg --reason fake", "media.file.not_found"),
    ("report {media}/notes.txt --reason fake", "media.type.unsupported"),
    ("report --reason fake", "usage.report.target_required"),
    ("report {media}/third.jpg --reason=", "usage.reason.required"),
    ("report --digest md5:abc --reason fake", "usage.digest.invalid"),
    ("export --format xml --out {media}/q.xml", "usage.format.invalid"),
    ("export --out {media}/empty", "usage.out.is_directory"),
    ("export --out {media}/third.jpg", "usage.out.exists"),  # regression: existing files were replaced
    ("export --out /proc/queue.csv", "usage.io"),  # regression: an OSError reached the user as a traceback
    ("export-labelled /proc/labelled", "usage.io"),
    ("export-labelled {tmp}/full", "usage.out.not_empty"),
    ("flag {media}/missing.jpg --no-detector", "media.file.not_found"),
    ("flag {media}/empty --no-detector", "usage.no_files"),
]


def _refused(queue: Queue, command: str, code: str) -> None:
    args = command.format(media=queue.media, tmp=queue.media.parent).split(" ")
    assert_error(run_cli("audit", *args), code, EXIT_USAGE)
    assert_nothing_written(queue.before, queue.home, queue.media)


@pytest.mark.parametrize(("command", "code"), STATEFUL, ids=[c for c, _ in STATEFUL])
def test_refusals_that_depend_on_the_queue(queue: Queue, command: str, code: str) -> None:
    _refused(queue, command, code)


@sqlite_only
@pytest.mark.parametrize(("command", "code"), INPUT, ids=[c.replace("{", "").replace("}", "") for c, _ in INPUT])
def test_refusals_of_bad_input(queue: Queue, command: str, code: str) -> None:
    _refused(queue, command, code)
