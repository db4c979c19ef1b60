"""The decision table of docs/verdicts.md, one test per row, on the pure ``decide()``.

End-to-end behaviour on real files (sign → re-encode → edit → synthetic) is in
``tests/test_verify_e2e.py``; here every row and every tie-break is pinned down.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from authenticity.provenance.c2pa_read import C2paReport, C2paState
from authenticity.provenance.checks import Outcome
from authenticity.verify import AUDIT_STATES, TRUSTED_STATES, Verdict, VerdictState, decide

DOC = Path(__file__).resolve().parents[1] / "docs" / "verdicts.md"
LABELS = ("synthetic", "uncertain", "authentic-looking", None)


def _c2pa(state: C2paState, synthetic: bool = False) -> C2paReport:
    return C2paReport(state, (), (), declared_synthetic=synthetic)


VALID, UNTRUSTED, INVALID = (_c2pa(s) for s in (C2paState.VALID, C2paState.UNTRUSTED, C2paState.INVALID))
VALID_AI, UNTRUSTED_AI, INVALID_AI = (_c2pa(s, True) for s in (C2paState.VALID, C2paState.UNTRUSTED, C2paState.INVALID))


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("c2pa", [None, VALID, UNTRUSTED, INVALID, VALID_AI, UNTRUSTED_AI])
@pytest.mark.parametrize("near", [False, True])
def test_row1_tampered_provenance_wins_over_everything(c2pa: C2paReport | None, near: bool, label: str | None) -> None:
    assert decide(Outcome.TAMPERED, c2pa, near, label) == (VerdictState.TAMPERED, ())


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("outcome", [Outcome.NONE, Outcome.AUTHENTIC, Outcome.REVOKED])
@pytest.mark.parametrize("c2pa", [INVALID, INVALID_AI])
def test_row2_invalid_c2pa_is_tampered_even_with_a_valid_record(
    outcome: Outcome, c2pa: C2paReport, label: str | None
) -> None:
    assert decide(outcome, c2pa, True, label) == (VerdictState.TAMPERED, ())


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("c2pa", [None, VALID, UNTRUSTED, VALID_AI, UNTRUSTED_AI])
def test_row3_revoked_signer_beats_declarations_and_detector(c2pa: C2paReport | None, label: str | None) -> None:
    assert decide(Outcome.REVOKED, c2pa, True, label) == (VerdictState.REVOKED, ())


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("outcome", [Outcome.NONE, Outcome.AUTHENTIC])
@pytest.mark.parametrize("c2pa", [VALID_AI, UNTRUSTED_AI])
@pytest.mark.parametrize("near", [False, True])
def test_row4_intact_ai_declaration_is_declared_synthetic(
    outcome: Outcome, c2pa: C2paReport, near: bool, label: str | None
) -> None:
    assert decide(outcome, c2pa, near, label) == (VerdictState.DECLARED_SYNTHETIC, ())


@pytest.mark.parametrize("label", ["uncertain", "authentic-looking", None])
@pytest.mark.parametrize("c2pa", [None, VALID, UNTRUSTED])
def test_row5_exact_registered_original_is_authentic(c2pa: C2paReport | None, label: str | None) -> None:
    assert decide(Outcome.AUTHENTIC, c2pa, False, label) == (VerdictState.AUTHENTIC, ())


@pytest.mark.parametrize("label", ["uncertain", "authentic-looking", None])
@pytest.mark.parametrize("near", [False, True])
def test_row6_trusted_c2pa_alone_is_authentic(near: bool, label: str | None) -> None:
    assert decide(Outcome.NONE, VALID, near, label) == (VerdictState.AUTHENTIC, ())


@pytest.mark.parametrize("label", ["uncertain", "authentic-looking", None])
@pytest.mark.parametrize("c2pa", [None, UNTRUSTED])
def test_row7_near_match_is_authentic_derivative(c2pa: C2paReport | None, label: str | None) -> None:
    assert decide(Outcome.NONE, c2pa, True, label) == (VerdictState.AUTHENTIC_DERIVATIVE, ())


@pytest.mark.parametrize(
    ("outcome", "c2pa", "near", "state"),
    [
        (Outcome.AUTHENTIC, None, False, VerdictState.AUTHENTIC),
        (Outcome.NONE, VALID, False, VerdictState.AUTHENTIC),
        (Outcome.NONE, None, True, VerdictState.AUTHENTIC_DERIVATIVE),
        (Outcome.NONE, UNTRUSTED, True, VerdictState.AUTHENTIC_DERIVATIVE),
    ],
)
def test_row8_provenance_outranks_detector_but_the_conflict_is_surfaced(
    outcome: Outcome, c2pa: C2paReport | None, near: bool, state: VerdictState
) -> None:
    assert decide(outcome, c2pa, near, "synthetic") == (state, ("verdict.conflict",))
    verdict = Verdict("x.jpg", state, ("verdict.conflict",), "sha256:" + "0" * 64, conflict=True)
    assert verdict.trusted and verdict.audit
    assert verdict.to_dict()["conflict"] is True and verdict.to_dict()["audit"] is True


@pytest.mark.parametrize("c2pa", [None, UNTRUSTED])
def test_row9_no_provenance_and_detector_synthetic_is_likely_synthetic(c2pa: C2paReport | None) -> None:
    assert decide(Outcome.NONE, c2pa, False, "synthetic") == (VerdictState.LIKELY_SYNTHETIC, ())


@pytest.mark.parametrize("c2pa", [None, UNTRUSTED])
def test_row10_no_provenance_and_detector_in_band_is_uncertain(c2pa: C2paReport | None) -> None:
    assert decide(Outcome.NONE, c2pa, False, "uncertain") == (VerdictState.UNCERTAIN, ())


@pytest.mark.parametrize("label", ["authentic-looking", None])
@pytest.mark.parametrize("c2pa", [None, UNTRUSTED])
def test_row11_no_provenance_and_no_detector_evidence_is_unverified(c2pa: C2paReport | None, label: str | None) -> None:
    assert decide(Outcome.NONE, c2pa, False, label) == (VerdictState.UNVERIFIED, ())


def test_trusted_and_audit_sets_follow_the_states() -> None:
    digest = "sha256:" + "0" * 64
    for state in VerdictState:
        verdict = Verdict("x", state, (), digest)
        assert verdict.trusted is (state in {VerdictState.AUTHENTIC, VerdictState.AUTHENTIC_DERIVATIVE})
        assert verdict.audit is (state in {VerdictState.TAMPERED, VerdictState.DECLARED_SYNTHETIC,
                                           VerdictState.LIKELY_SYNTHETIC})  # fmt: skip
    assert TRUSTED_STATES.isdisjoint(AUDIT_STATES)


def test_the_documented_table_names_every_state_and_has_eleven_rows() -> None:
    text = DOC.read_text()
    rows = re.findall(r"^\| (\d+) \|", text, flags=re.MULTILINE)
    assert rows == [str(i) for i in range(1, 12)]
    for state in VerdictState:
        assert f"`{state.value}`" in text, state
