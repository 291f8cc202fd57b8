"""From the EAC read to the core (issue 19): what the chip gave decides whether the
thumb channel opens; the images stay beside the result, never in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.icao import ta
from gate.policy import biometric_plan
from gate.policy_config import Policy
from gate.reasons import ReasonCode
from gate.results import Check
from sim.chip_eac import EACChip, EACFaults
from tests.chip.test_eac import read, terminals

BOTH = Policy.model_validate(
    {"categories": [{"name": "c", "kind": "citizen", "biometric": "both"}]}
)


def test_a_chip_that_gave_dg3_opens_the_thumb_channel(tmp_path: Path) -> None:
    rep = read(EACChip(), terminals(tmp_path))
    result = rep.result()
    assert result.terminal_auth is Check.PASSED and result.terminal_auth_reason is None
    assert result.fingers == (1, 6)  # positions only: the images stay in the report
    plan = biometric_plan("c", result, BOTH, thumb_reader=True)
    assert plan.thumb and plan.fallback is None


@pytest.mark.parametrize(
    ("chip", "expired", "trust", "why"),
    [
        (EACChip(eac_faults=EACFaults(refuse_ta=True)), False, True, ReasonCode.CHIP_TA_REFUSED),
        (EACChip(), True, True, ReasonCode.CHIP_TA_CERT_EXPIRED),
        (EACChip(), False, False, ReasonCode.CHIP_TA_NO_CHAIN),
    ],
    ids=["ta-refused", "is-cert-expired", "no-trust-folder"],
)
def test_a_chip_that_gave_no_dg3_falls_back_with_its_reason(
    tmp_path: Path, chip: EACChip, expired: bool, trust: bool, why: ReasonCode
) -> None:
    eac: dict[str, ta.Terminal] | None = terminals(tmp_path, expired=expired) if trust else {}
    result = read(chip, eac).result()
    assert result.reasons == () and result.fingers == ()
    plan = biometric_plan("c", result, BOTH, thumb_reader=True)
    assert not plan.thumb and plan.fallback is why
