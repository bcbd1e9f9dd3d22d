"""Compiled provisions are shared between Consents whose provisions are the same JSON
(policy._compile_root): the memo must give exactly the decisions compiling each Consent
on its own gives, for every person, partner and record of the demo world, and must never
share an answer between a provision and something that only encodes like it.
"""

from __future__ import annotations

import copy
import enum
from datetime import date

import pytest
from consent_world import (
    NOW,
    awp,
    awp_cmht,
    bath_mind,
    citizens_advice,
    emergency,
    icr,
    keynsham_gp,
    person_app,
    sirona,
)

from carebridge.consent import policy
from carebridge.consent.decide import decide
from carebridge.consent.model import PatientFacts, Requester
from carebridge.consent.policy import clear_policy_cache, compile_consent
from carebridge.mappings.demo_world import build_demo_world

WORLD = build_demo_world(date(2026, 6, 1))
CONSENTS = [r for r in WORLD.resources if r["resourceType"] == "Consent"]
PATIENTS = sorted({r["patient"]["reference"] for r in CONSENTS})
REQUESTERS: list[Requester] = [
    make(**kw)
    for make in (awp, awp_cmht, sirona, bath_mind, citizens_advice, keynsham_gp, icr)
    for kw in ({}, {"purpose": "HOPERAT"})
] + [
    emergency(keynsham_gp),
    emergency(icr),
    emergency(sirona),
    *(person_app(p) for p in PATIENTS),
]


def _facts(patient: str, version: int) -> PatientFacts:
    # Fresh copies, so nothing is shared with an earlier compile but equal JSON.
    mine = tuple(copy.deepcopy(c) for c in CONSENTS if c["patient"]["reference"] == patient)
    return PatientFacts(patient, ("Organization/awp-bath-cmht", "Organization/awp"), mine, version)


def _all_decisions(version: int) -> list:
    return [
        decide(requester, resource, _facts(patient, version), NOW)
        for patient in PATIENTS
        for requester in REQUESTERS
        for resource in WORLD.resources
    ]


def test_the_demo_world_has_consents_to_share() -> None:
    assert len(CONSENTS) >= 5 and len(PATIENTS) >= 4


def test_memoised_decisions_are_the_unmemoised_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_policy_cache()
    with monkeypatch.context() as m:
        m.setattr(policy, "_compile_root", lambda prov: policy._compile(prov, "provision"))
        alone = _all_decisions(1)
    clear_policy_cache()
    shared = _all_decisions(1)
    again = _all_decisions(2)  # new policies, every root from the memo now
    assert len(policy._roots) > 0
    assert shared == alone
    assert again == alone
    clear_policy_cache()


@pytest.mark.parametrize("consent", CONSENTS, ids=[c["id"] for c in CONSENTS])
def test_a_shared_root_is_the_one_compiling_gives(consent: dict) -> None:
    clear_policy_cache()
    first = compile_consent(copy.deepcopy(consent))
    second = compile_consent(copy.deepcopy(consent))
    assert second.root is first.root  # shared
    own = policy._compile(copy.deepcopy(consent["provision"]), "provision")
    assert first.root == own


def test_consents_made_from_the_same_form_share_one_root() -> None:
    clear_policy_cache()
    a, b = copy.deepcopy(CONSENTS[0]), copy.deepcopy(CONSENTS[0])
    b["id"], b["dateTime"] = "another", "2026-05-01"
    ca, cb = compile_consent(a), compile_consent(b)
    assert ca.root is cb.root
    assert (ca.ref, cb.ref) == (f"Consent/{a['id']}", "Consent/another")


def test_an_unreadable_provision_stays_unreadable_from_the_memo() -> None:
    clear_policy_cache()
    bad = copy.deepcopy(CONSENTS[0])
    bad["provision"]["provision"][0]["nonsense"] = True
    first, second = compile_consent(copy.deepcopy(bad)), compile_consent(copy.deepcopy(bad))
    assert first.root is None and second.root is None
    assert first.problems == second.problems and "nonsense" in first.problems[0]


class _Kind(enum.Enum):
    PERMIT = "permit"


@pytest.mark.parametrize(
    "twin",
    [
        lambda p: {**p, "provision": tuple(p["provision"])},  # a tuple encodes as a JSON array
        lambda p: {**p, "type": _Kind.PERMIT},  # an enum encodes as its value
    ],
    ids=["tuple", "enum"],
)
def test_what_only_encodes_like_a_provision_is_never_given_its_answer(twin) -> None:
    clear_policy_cache()
    readable = {"type": "permit", "provision": [{"type": "deny", "class": [{"code": "CarePlan"}]}]}
    assert compile_consent({"id": "a", "provision": copy.deepcopy(readable)}).root is not None
    # Compiled on its own, as without the memo (unreadable: not a list, not permit/deny).
    odd = compile_consent({"id": "b", "provision": twin(copy.deepcopy(readable))})
    assert odd.root is None and odd.problems
    clear_policy_cache()
    odd_first = compile_consent({"id": "b", "provision": twin(copy.deepcopy(readable))})
    assert odd_first.root is None
    assert compile_consent({"id": "a", "provision": copy.deepcopy(readable)}).root is not None
