"""The reviewer web page: sessions, CSRF, escaping and error pages over HTTP, then a real browser.

The first half drives the page with an HTTP client against the app (fast, every refusal by its
code). The second half (marker ``browser``) starts ``authenticity serve`` as a subprocess on a free
port, with the shipped detector so verdicts carry tile scores, and drives Debian's Chromium through
Playwright: log in, filter the queue, open an item, claim, decide, log out. It is skipped where
Chromium or Playwright is missing, except in CI (``CI=true``), where ``.ci/run`` installs Chromium
and a skip would hide a broken page. ``AUTHENTICITY_SCREENSHOTS=1`` also writes the screenshots
used by ``docs/review.md`` (``docs/img/review-*.png``).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from authenticity.api.app import create_app
from authenticity.api.web.session import COOKIE, SESSION_TTL, SessionSigner
from authenticity.audit.workflow import flag_verdict
from authenticity.config import Settings
from authenticity.media import sha256_file
from authenticity.registry import db
from authenticity.registry.apikeys import Role
from authenticity.registry.models import ApiKey, FlaggedItem
from authenticity.registry.store import open_registry
from authenticity.verify import Detection, Verdict, VerdictState

from .conftest import PASSPHRASE, write_photo
from .media_samples import write_video
from .test_api import TEST_LIMITS, new_key
from .test_api_audit import tampered_jpeg

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
XSS = "<script>alert(1)</script>"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, html
    return match.group(1)


def assert_page(response: Any, status: int, code: str) -> str:
    """An HTML error page with the exact status and code, and never a traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert f'<code class="code" id="error-code">{code}</code>' in response.text
    assert "Traceback" not in response.text
    return str(response.text)


# --------------------------------------------------------------------------- HTTP-level (no browser)


@dataclass
class Web:
    client: TestClient
    settings: Settings
    reviewer: str
    other: str
    signer: str
    tmp: Path

    def login(self, key: str, client: TestClient | None = None) -> str:
        """Log *key* in (on *client*, default the shared one) and return the session's CSRF token."""
        client = client or self.client
        form = client.get("/review/login")
        done = client.post("/review/login", data={"key": key, "csrf": csrf_of(form.text)}, follow_redirects=False)
        assert done.status_code == 303, done.text
        return csrf_of(client.get("/review").text)

    def item(self, *, tiles: bool = True, seed: int = 1, video: bool = False, enlargement: float | None = None) -> int:
        """A likely-synthetic item with tile (or, for a video, frame) scores, as the detector would report."""
        if video:
            photo = write_video(self.tmp / f"item-{seed}.mp4")
            frames = tuple({"index": i, "time_s": i / 10, "score": 0.5 + i / 40, "faces": i % 2} for i in range(10))
            detection = Detection(score=0.71, label="synthetic", model={"name": "detector"}, frames=frames)
        else:
            photo = write_photo(self.tmp / f"item-{seed}.jpg", seed=seed, size=(160, 200))
            cells = tuple({"y": y, "x": x, "size": 128, "score": s} for (y, x), s in
                          zip([(0, 0), (0, 72), (32, 0), (32, 72)], [0.91, 0.4, 0.75, 0.97], strict=True))  # fmt: skip
            detection = Detection(score=0.93, label="synthetic", model={"name": "detector", "arch": "tiny"},
                                  tiles=cells if tiles else (), enlargement=enlargement)  # fmt: skip
        verdict = Verdict("upload", VerdictState.LIKELY_SYNTHETIC, ("registry.record.not_found", "detector.synthetic"),
                          sha256_file(photo), detection=detection)  # fmt: skip
        with db.session_scope(open_registry(self.settings)) as session:
            item = flag_verdict(session, self.settings, verdict, media=photo, actor="api")
            assert item is not None
            return item.id


@pytest.fixture
def web(settings: Settings, tmp_path: Path) -> Iterator[Web]:
    with TestClient(create_app(settings, detector=False, limits=TEST_LIMITS)) as client:
        from datetime import UTC, datetime

        from authenticity.provenance.keys import generate_signing_key
        from authenticity.registry import repository

        with db.session_scope(open_registry(settings)) as session:
            repository.add_signer(session, "cam-1", generate_signing_key().public_key, datetime.now(UTC))
        yield Web(client, settings, new_key(settings, "reviewer-1", Role.REVIEWER),
                  new_key(settings, "reviewer-2", Role.REVIEWER), new_key(settings, "device-1", Role.SIGNER, "cam-1"),
                  tmp_path)  # fmt: skip


sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@sqlite_only
def test_login_sets_a_signed_httponly_strict_cookie_never_the_key(web: Web) -> None:
    form = web.client.get("/review/login")
    assert form.status_code == 200 and "default-src 'none'" in form.headers["content-security-policy"]
    done = web.client.post("/review/login", data={"key": web.reviewer, "csrf": csrf_of(form.text)},
                           follow_redirects=False)  # fmt: skip
    assert (done.status_code, done.headers["location"]) == (303, "/review")
    cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith(COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/review" in cookie
    assert web.reviewer not in cookie and web.reviewer.split("_", 2)[2] not in cookie
    queue = web.client.get("/review")
    assert queue.status_code == 200 and 'id="reviewer">reviewer-1<' in queue.text


@sqlite_only
def test_login_refusals_show_the_form_again_with_the_code(web: Web) -> None:
    for key, status, code in [("auth_00000000_" + "A" * 43, 401, "auth.invalid"), ("nonsense", 401, "auth.invalid"),
                              (web.signer, 403, "auth.forbidden")]:  # fmt: skip
        form = web.client.get("/review/login")
        refused = web.client.post("/review/login", data={"key": key, "csrf": csrf_of(form.text)})
        assert refused.status_code == status, refused.text
        assert f"{code}</code>" in refused.text and 'name="key"' in refused.text
        assert not any(c.startswith(COOKIE + "=") for c in refused.headers.get_list("set-cookie"))
    stale = web.client.post("/review/login", data={"key": web.reviewer, "csrf": "forged"})
    assert stale.status_code == 403 and "review.csrf.invalid</code>" in stale.text
    fresh = TestClient(web.client.app)  # no login cookie: a form posted from another site
    assert fresh.post("/review/login", data={"key": web.reviewer, "csrf": "x"}).status_code == 403


@sqlite_only
def test_pages_without_a_valid_session(web: Web) -> None:
    item_id = web.item()
    redirect = web.client.get("/review", follow_redirects=False)
    assert (redirect.status_code, redirect.headers["location"]) == (303, "/review/login")
    assert_page(web.client.post(f"/review/items/{item_id}/claim", data={"csrf": "x"}), 401, "auth.session.missing")
    for forged in (b"v1.1.1.abc.forged", "v1.1.1.abc.f\u00f6rged".encode("latin-1"), "v1.\u00b2.1.a.x".encode(), b"v1"):
        cookie = f"{COOKIE}=".encode() + forged  # raw bytes: a browser may send anything
        assert_page(web.client.get("/review", headers={b"cookie": cookie}), 401, "auth.session.invalid")
    secret = (web.settings.keys_dir / "review-session.key").read_bytes()
    with db.session_scope(open_registry(web.settings), read_only=True) as session:
        row_id = session.scalar(select(ApiKey.id).where(ApiKey.name == "reviewer-1"))
    old = SessionSigner(secret).issue(int(row_id or 0), now=time.time() - SESSION_TTL.total_seconds() - 120)
    web.client.cookies.set(COOKIE, old, path="/review")
    assert_page(web.client.get("/review"), 401, "auth.session.expired")
    assert_page(web.client.get(f"/review/items/{item_id}/media"), 401, "auth.session.expired")


@sqlite_only
def test_forms_need_the_sessions_csrf_token(web: Web) -> None:
    item_id = web.item()
    web.login(web.reviewer)
    other = TestClient(web.client.app)
    foreign = web.login(web.other, other)
    for token in ("", "forged", foreign):
        assert_page(web.client.post(f"/review/items/{item_id}/claim", data={"csrf": token}), 403,
                    "review.csrf.invalid")  # fmt: skip
    assert_page(web.client.post("/review/logout", data={"csrf": foreign}), 403, "review.csrf.invalid")
    with db.session_scope(open_registry(web.settings), read_only=True) as session:
        assert session.get(FlaggedItem, item_id).status == "open"  # type: ignore[union-attr]


@sqlite_only
def test_revoking_the_key_ends_its_session(web: Web) -> None:
    from datetime import UTC, datetime

    from authenticity.registry import apikeys

    web.login(web.reviewer)
    with db.session_scope(open_registry(web.settings)) as session:
        apikeys.revoke_api_key(session, "reviewer-1", datetime.now(UTC))
    assert_page(web.client.get("/review"), 401, "auth.revoked")


@sqlite_only
def test_claim_decide_and_the_note_renders_as_text(web: Web) -> None:
    item_id = web.item()
    csrf = web.login(web.reviewer)
    claimed = web.client.post(f"/review/items/{item_id}/claim", data={"csrf": csrf}, follow_redirects=False)
    assert (claimed.status_code, claimed.headers["location"]) == (303, f"/review/items/{item_id}")
    decided = web.client.post(f"/review/items/{item_id}/decide",
                              data={"csrf": csrf, "decision": "confirmed-synthetic", "note": XSS})  # fmt: skip
    assert decided.status_code == 200, decided.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in decided.text and XSS not in decided.text
    assert 'id="decision">confirmed-synthetic<' in decided.text
    assert "script-src" not in decided.headers["content-security-policy"]  # default-src 'none' forbids scripts
    assert_page(web.client.post(f"/review/items/{item_id}/release", data={"csrf": csrf}), 409, "audit.item.decided")


@sqlite_only
def test_item_page_shows_evidence_and_draws_the_heatmap(web: Web) -> None:
    item_id, plain = web.item(), web.item(tiles=False, seed=2)
    web.login(web.reviewer)
    page = web.client.get(f"/review/items/{item_id}").text
    for expected in (
        "0.930",
        "synthetic",
        "detector / tiny",
        "registry.record.not_found",
        "likely-synthetic",
        f'src="/review/items/{item_id}/heatmap.png"',
        f'src="/review/items/{item_id}/media"',
    ):
        assert expected in page, expected
    png = web.client.get(f"/review/items/{item_id}/heatmap.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG") and png.headers["content-type"] == "image/png"
    media = web.client.get(f"/review/items/{item_id}/media")
    assert media.status_code == 200 and media.headers["x-content-type-options"] == "nosniff"
    assert "heatmap.png" not in web.client.get(f"/review/items/{plain}").text
    assert_page(web.client.get(f"/review/items/{plain}/heatmap.png"), 404, "review.figure.none")
    assert_page(web.client.get(f"/review/items/{plain}/timeline.png"), 404, "review.figure.none")


@sqlite_only
def test_item_page_says_when_the_detector_scored_an_image_shrunk_back(web: Web) -> None:
    shrunk, kept = web.item(enlargement=2.0, seed=3), web.item(enlargement=1.0, seed=4)
    web.login(web.reviewer)
    assert "2.00× enlarged: scored shrunk back" in web.client.get(f"/review/items/{shrunk}").text
    assert "scored shrunk back" not in web.client.get(f"/review/items/{kept}").text
    # the tiles lie in the shrunk image's coordinates: the heatmap is drawn over that extent
    png = web.client.get(f"/review/items/{shrunk}/heatmap.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


@sqlite_only
def test_video_item_plays_in_a_video_tag_with_a_frame_timeline(web: Web) -> None:
    item_id = web.item(video=True)
    web.login(web.reviewer)
    page = web.client.get(f"/review/items/{item_id}").text
    assert f'<video id="media-video" src="/review/items/{item_id}/media"' in page
    assert f'src="/review/items/{item_id}/timeline.png"' in page and "heatmap.png" not in page
    png = web.client.get(f"/review/items/{item_id}/timeline.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert web.client.get(f"/review/items/{item_id}/media").headers["content-type"] == "video/mp4"
    assert_page(web.client.get(f"/review/items/{item_id}/heatmap.png"), 404, "review.figure.none")


@sqlite_only
def test_queue_filters_and_sorts(web: Web) -> None:
    low, high = web.item(seed=3), web.item(seed=4)
    with db.session_scope(open_registry(web.settings)) as session:
        session.get(FlaggedItem, low).score = 0.2  # type: ignore[union-attr]  # the chain does not cover scores
    web.login(web.reviewer)

    def rows(query: str) -> list[int]:
        page = web.client.get(f"/review?{query}")
        assert page.status_code == 200, page.text
        return [int(i) for i in re.findall(r'data-item="(\d+)"', page.text)]

    assert rows("sort=score") == [high, low] and rows("sort=oldest") == [low, high]
    assert rows("min_score=0.5") == [high] and rows("status=decided") == [] and rows("reason=likely-synthetic")
    assert_page(web.client.get("/review?status=gone"), 422, "usage.status.invalid")
    assert_page(web.client.get("/review?min_score=abc"), 422, "usage.min_score.invalid")
    assert_page(web.client.get("/review?sort=name"), 422, "usage.sort.invalid")


@sqlite_only
def test_error_pages_show_the_code_never_a_traceback(web: Web) -> None:
    web.login(web.reviewer)
    assert_page(web.client.get("/review/items/999"), 404, "audit.item.not_found")
    assert_page(web.client.get("/review/items/abc"), 422, "request.invalid")
    assert_page(web.client.get("/review/nothing-here"), 404, "request.route.not_found")
    assert_page(web.client.get("/review/static/..%2F..%2F..%2Fetc%2Fpasswd"), 404, "request.route.not_found")
    assert web.client.get("/review/static/review.css").status_code == 200
    assert web.client.get("/v1/audit/items/999").headers["content-type"] == "application/json"  # API stays JSON


@sqlite_only
def test_logout_clears_the_session(web: Web) -> None:
    csrf = web.login(web.reviewer)
    out = web.client.post("/review/logout", data={"csrf": csrf}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/review/login?out=1")
    assert any(c.startswith(f'{COOKIE}=""') or "Max-Age=0" in c for c in out.headers.get_list("set-cookie"))
    assert "You are logged out" in web.client.get("/review/login?out=1").text
    assert web.client.get("/review", follow_redirects=False).status_code == 303


# --------------------------------------------------------------------------- a real server and browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _need_browser() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "the playwright Python package is not installed"
    else:
        missing = "" if CHROMIUM.is_file() else f"{CHROMIUM} is missing (apt-get install chromium)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests must run in CI: {missing}")
        pytest.skip(missing)


@dataclass
class Server:
    url: str
    env: dict[str, str]
    keys: dict[str, str]
    items: dict[str, int]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "authenticity", *args], env=self.env, capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    _need_browser()
    tmp = tmp_path_factory.mktemp("review-server")
    env = {**os.environ, "AUTHENTICITY_HOME": str(tmp / "home"), "AUTHENTICITY_KEY_PASSPHRASE": PASSPHRASE,
           "AUTHENTICITY_DATABASE_URL": f"sqlite:///{tmp / 'registry.db'}",
           "AUTHENTICITY_DB_TIMEOUT": "10"}  # fmt: skip
    keys = {}
    for name, role in (("ana", "reviewer"), ("ben", "reviewer")):
        made = subprocess.run([sys.executable, "-m", "authenticity", "apikey", "create", name, "--role", role],
                              env=env, capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
        keys[name] = made.stdout.strip()
    port = _free_port()
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, "-m", "authenticity", "serve", "--port", str(port), "--log-level",
                                "warning"], env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # the detector loads before the server answers
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start:\n{(tmp / 'server.log').read_text()}")
            time.sleep(0.3)
        auth = {"Authorization": f"Bearer {keys['ana']}"}
        items = {}
        for seed in (21, 22):
            data = tampered_jpeg(tmp, seed, size=(300, 400))
            verdict = httpx.post(f"{url}/v1/verify", headers=auth, files={"file": ("x.jpg", data)}, timeout=120)
            assert verdict.status_code == 200 and verdict.json()["state"] == "tampered", verdict.text
            items[f"tampered-{seed}"] = verdict.json()["flagged_item"]
        photo = write_photo(tmp / "reported.jpg", seed=23, size=(240, 320)).read_bytes()
        reported = httpx.post(f"{url}/v1/reports", headers=auth, files={"file": ("r.jpg", photo)},
                              data={"reason": "sent in by a reader"}, timeout=60)  # fmt: skip
        assert reported.status_code == 200, reported.text
        items["reported"] = reported.json()["id"]
        yield Server(url, env, keys, items)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        yield chromium
        chromium.close()


def _login(browser: Any, server: Server, key: str) -> Any:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{server.url}/review")  # not logged in: the login form
    assert page.url.endswith("/review/login")
    page.fill("#key", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/review")
    return page


def _screenshot(page: Any, name: str) -> None:
    if os.environ.get("AUTHENTICITY_SCREENSHOTS") == "1":
        page.wait_for_load_state("load")  # every image drawn
        page.screenshot(path=str(ROOT / "docs" / "img" / f"review-{name}.png"), full_page=True)


@pytest.mark.browser
@pytest.mark.slow
def test_browser_wrong_key_shows_the_error(server: Server, browser: Any) -> None:
    page = browser.new_context().new_page()
    page.goto(f"{server.url}/review/login")
    page.fill("#key", "auth_00000000_" + "A" * 43)
    page.click("button[type=submit]")
    assert "auth.invalid" in page.inner_text("#login-error")
    assert page.context.cookies() == [] or all(c["name"] != COOKIE for c in page.context.cookies())
    page.context.close()


@pytest.mark.browser
@pytest.mark.slow
def test_browser_review_session(server: Server, browser: Any) -> None:
    page = _login(browser, server, server.keys["ana"])
    assert page.inner_text("#reviewer") == "ana"
    assert len(page.query_selector_all("#queue tbody tr")) == 3
    page.select_option("select[name=reason]", "tampered")
    page.click("#filters button[type=submit]")
    assert {int(r.get_attribute("data-item")) for r in page.query_selector_all("#queue tbody tr")} == {
        server.items["tampered-21"], server.items["tampered-22"]}  # fmt: skip
    page.goto(f"{server.url}/review?sort=score")
    _screenshot(page, "queue")

    item = server.items["tampered-21"]
    page.click(f'#queue a[href="/review/items/{item}"]')
    page.wait_for_selector("#heatmap")
    for image in ("#media-image", "#heatmap"):  # decode() waits for the load, and fails for a broken image
        assert page.locator(image).evaluate("img => img.decode().then(() => img.naturalWidth)") > 0, image
    assert "tampered" in page.inner_text("#provenance") and "c2pa.content.mismatch" in page.inner_text("#codes")
    assert "invalid" in page.inner_text("#provenance")  # the C2PA state
    assert "P(synthetic)" in page.inner_text("#detector")
    assert page.inner_text("#status") == "open"
    page.click("#claim")
    page.wait_for_selector("#decide-form")
    assert page.inner_text("#status") == "claimed"
    page.select_option("#decision-select", "manipulated")
    page.fill("#note-input", f"quantisation table edited {XSS}")
    _screenshot(page, "item")
    page.click("#decide")
    page.wait_for_selector("#decision")
    assert page.inner_text("#status") == "decided" and page.inner_text("#decision") == "manipulated"
    assert page.inner_text("#note") == f"quantisation table edited {XSS}"  # shown as text, not run
    assert page.query_selector("#note script") is None
    assert "decided" in page.inner_text("#history")

    checked = server.cli("audit", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    page.click("header button[type=submit]")  # log out
    page.wait_for_url(f"{server.url}/review/login?out=1")
    page.goto(f"{server.url}/review")
    assert page.url.endswith("/review/login")
    page.context.close()


@pytest.mark.browser
@pytest.mark.slow
def test_browser_second_reviewer_cannot_take_a_claimed_item(server: Server, browser: Any) -> None:
    item = server.items["reported"]
    ben = _login(browser, server, server.keys["ben"])
    ben.goto(f"{server.url}/review/items/{item}")  # ben sees the item while it is open...
    assert ben.inner_text("#status") == "open" and "No verdict" in ben.content()
    ana = _login(browser, server, server.keys["ana"])
    ana.goto(f"{server.url}/review/items/{item}")
    ana.click("#claim")  # ...ana claims it first...
    ana.wait_for_selector("#decide-form")
    ben.click("#claim")  # ...and ben's click on his stale page is refused with the code
    assert ben.inner_text("#error-code") == "audit.item.claimed"
    ben.goto(f"{server.url}/review/items/{item}")
    assert ben.query_selector("#decide-form") is None and "Claimed by ana" in ben.inner_text("#review")
    # A decision forged past the page (ben's own valid CSRF token) is refused just the same.
    token = ben.get_attribute("header input[name=csrf]", "value")
    forged = ben.request.post(f"{server.url}/review/items/{item}/decide",
                              form={"csrf": token, "decision": "confirmed-authentic", "note": "mine now"})  # fmt: skip
    assert forged.status == 409 and "audit.item.not_claimed" in forged.text()
    ben.context.close()
    ana.context.close()
