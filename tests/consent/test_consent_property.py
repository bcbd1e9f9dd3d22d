"""Property: the fast engine agrees with a naive evaluator written from the contract text.

The naive evaluator below reads CONTRACTS.md section 4 literally, walking the raw
Consent dicts on every call, with its own date arithmetic (whole seconds: a date
covers every second of its day, a dateTime its one second, a Period every second from
its start's first to its end's last). Random consent trees - random criteria subsets,
types and nesting down to three levels below the root - must never let the engine
disclose what the naive evaluator refuses; in fact they must agree exactly, on
permit/deny, on the basis and on the break-glass flag.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consent_world import (
    ALLIANCE,
    AWP,
    BATH_MIND,
    CONF,
    DR_PATEL,
    ICR,
    KEYNSHAM_GP,
    MILLIE,
    SAM,
    SIRONA,
)
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from carebridge.consent.decide import decide
from carebridge.consent.model import PatientFacts, Requester
from carebridge.mappings.vocabulary import CONSENT_SCOPE_SYSTEM, SECTION_SYSTEM

# ------------------------------------------------------------ naive evaluator

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def seconds(value: str) -> tuple[int, int]:
    """First and last whole second a date or dateTime covers."""
    if len(value) == 10:  # a date: the whole day
        day = datetime.fromisoformat(value).replace(tzinfo=UTC)
        first = int((day - EPOCH).total_seconds())
        return first, first + 86399
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    s = int((moment - EPOCH).total_seconds())
    return s, s


def period_seconds(period: dict) -> tuple[float, float]:
    lo = seconds(period["start"])[0] if "start" in period else float("-inf")
    hi = seconds(period["end"])[1] if "end" in period else float("inf")
    return lo, hi


def naive_resource_date(resource: dict) -> str | None:
    if "start" in resource.get("period", {}):
        return resource["period"]["start"]
    for key in ("authoredOn", "occurrenceDateTime", "created"):
        if key in resource:
            return resource[key]
    return resource.get("meta", {}).get("lastUpdated")


def naive_matches(p: dict, req: Requester, res: dict, now: int) -> bool:
    """Rule 3, criterion by criterion, as the contract words it."""
    if "actor" in p:
        mine = {*req.org_chain, req.organization, req.practitioner}
        if not any(a["reference"]["reference"] in mine for a in p["actor"]):
            return False
    if "action" in p and not any(
        c["code"] == "access" for cc in p["action"] for c in cc["coding"]
    ):
        return False
    if "purpose" in p and req.purpose not in [c["code"] for c in p["purpose"]]:
        return False
    if "class" in p and res["resourceType"] not in [c["code"] for c in p["class"]]:
        return False
    if "code" in p:
        meta = res.get("meta", {})
        theirs = [(c.get("system"), c["code"]) for c in meta.get("tag", [])]
        for cc in res.get("category", []):
            theirs += [(c.get("system"), c["code"]) for c in cc["coding"]]
        theirs += [(c.get("system"), c["code"]) for c in res.get("code", {}).get("coding", [])]
        if not any((c["system"], c["code"]) in theirs for cc in p["code"] for c in cc["coding"]):
            return False
    if "securityLabel" in p:
        theirs = [(c["system"], c["code"]) for c in res.get("meta", {}).get("security", [])]
        if not any((c["system"], c["code"]) in theirs for c in p["securityLabel"]):
            return False
    if "dataPeriod" in p:
        when = naive_resource_date(res)
        if when is None:
            return False
        first, last = seconds(when)
        lo, hi = period_seconds(p["dataPeriod"])
        if not (lo <= first and last <= hi):
            return False
    if "period" in p:
        lo, hi = period_seconds(p["period"])
        if not (lo <= now <= hi):
            return False
    if "data" in p:
        me = f"{res['resourceType']}/{res['id']}"
        if not any(d["reference"]["reference"] == me for d in p["data"]):
            return False
    return True


def naive_answer(p: dict, req: Requester, res: dict, now: int) -> str | None:
    """Rule 4."""
    if not naive_matches(p, req, res, now):
        return None
    answers = [a for k in p.get("provision", []) if (a := naive_answer(k, req, res, now))]
    if answers:
        return "deny" if "deny" in answers else "permit"
    return p.get("type")


def naive_advance(p: dict, req: Requester, res: dict, now: int) -> bool:
    """Rule 6: a matching deny (under matching ancestors) stating actor and ETREAT."""
    if not naive_matches(p, req, res, now):
        return False
    if (p.get("type") == "deny" and "actor" in p
            and "ETREAT" in [c["code"] for c in p.get("purpose", [])]):
        return True
    return any(naive_advance(k, req, res, now) for k in p.get("provision", []))


def naive_decide(req: Requester, res: dict, f: PatientFacts, now: int) -> tuple[bool, str, bool]:
    """(permit, basis, break_glass) straight from the contract."""
    if req.kind == "trust" and req.organization in f.custodian_chain:
        return True, "custodian", False
    if req.kind == "person" and req.patient == f.patient:
        return True, "person", False
    applicable = [
        c for c in f.consents
        if c["status"] == "active"
        and any(x["system"] == CONSENT_SCOPE_SYSTEM and x["code"] == "patient-privacy"
                for x in c["scope"]["coding"])
        and c["patient"]["reference"] == f.patient
        and "provision" in c
        and ("period" not in c["provision"]
             or period_seconds(c["provision"]["period"])[0] <= now
             <= period_seconds(c["provision"]["period"])[1])
    ]
    answers = [naive_answer(c["provision"], req, res, now) for c in applicable]
    glass = (req.purpose == "ETREAT" and bool(req.break_glass_reason)
             and bool(req.break_glass_reason.strip()) and req.kind in ("trust", "gp", "icr"))
    if "deny" in answers:
        permit, basis = False, "denied"
    elif "permit" in answers:
        permit, basis = True, "consent"
    else:
        permit, basis = False, "no-consent"
    if not permit and glass:
        if any(naive_advance(c["provision"], req, res, now) for c in applicable):
            return False, "advance-decision", False
        return True, "break-glass", True
    return permit, basis, glass and permit


# ----------------------------------------------------------------- strategies

OTHER = "Organization/other"
ACTORS = [BATH_MIND, ALLIANCE, KEYNSHAM_GP, ICR, SIRONA, DR_PATEL, SAM, OTHER]
PURPOSES = ["TREAT", "ETREAT", "HRESCH"]
CODES = [(SECTION_SYSTEM, "daily-activities"), (SECTION_SYSTEM, "risk-assessment"),
         (SECTION_SYSTEM, "crisis-plan"), ("http://example.org/other", "daily-activities")]
LABELS = [(CONF, "R"), (CONF, "N")]
TYPES = ["CarePlan", "Goal", "RiskAssessment", "Patient"]
IDS = ["a", "b", "millie"]
STARTS = ["2026-01-01", "2026-06-01", "2026-06-01T12:00:00Z", "2026-06-01T12:00:01Z",
          "2026-07-01"]
ENDS = ["2026-05-31", "2026-06-01", "2026-06-01T12:00:00Z", "2026-05-31T23:59:59Z",
        "2026-12-31"]
WHENS = ["2026-05-31", "2026-06-01", "2026-06-01T12:00:00Z", "2026-06-01T11:59:59Z",
         "2026-01-01T00:00:00Z", "2026-07-01", "2026-06-02T00:00:00Z"]
NOWS = [datetime(2026, 6, 1, 12, 0, tzinfo=UTC), datetime(2026, 6, 1, 12, 0, 1, tzinfo=UTC),
        datetime(2026, 5, 31, 23, 59, 59, tzinfo=UTC), datetime(2026, 6, 2, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)]


def some(values: list) -> st.SearchStrategy:
    return st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True)


periods = st.builds(
    lambda s, e: {k: v for k, v in (("start", s), ("end", e)) if v is not None},
    st.none() | st.sampled_from(STARTS), st.none() | st.sampled_from(ENDS),
)

CRITERIA: dict[str, st.SearchStrategy] = {
    "actor": some(ACTORS).map(lambda xs: [{"reference": {"reference": x}} for x in xs]),
    "action": some(["access", "correct", "disclose"]).map(
        lambda xs: [{"coding": [{"code": x}]} for x in xs]),
    "purpose": some(PURPOSES).map(lambda xs: [{"system": "x", "code": x} for x in xs]),
    "class": some(TYPES).map(lambda xs: [{"code": x} for x in xs]),
    "code": some(CODES).map(lambda xs: [{"coding": [{"system": s, "code": c}]} for s, c in xs]),
    "securityLabel": some(LABELS).map(lambda xs: [{"system": s, "code": c} for s, c in xs]),
    "dataPeriod": periods,
    "period": periods,
    "data": some([f"{t}/{i}" for t in TYPES for i in IDS]).map(
        lambda xs: [{"reference": {"reference": x}} for x in xs]),
}


@st.composite
def provisions(draw: st.DrawFn, depth: int = 0) -> dict:
    p: dict = {}
    shape = draw(st.sampled_from(["permit", "deny", None, "permit", "deny", "advance"]))
    if shape == "advance":
        # Now and then an advance decision, so rule 6 is exercised often.
        p["type"] = "deny"
        p["actor"] = [{"reference": {"reference": draw(
            st.sampled_from([KEYNSHAM_GP, ICR, SIRONA, DR_PATEL, ALLIANCE]))}}]
        p["purpose"] = draw(CRITERIA["purpose"].map(
            lambda xs: [*xs, {"system": "x", "code": "ETREAT"}]))
    elif shape is not None:
        p["type"] = shape
    for key in draw(st.lists(st.sampled_from(sorted(CRITERIA)), max_size=3, unique=True)):
        p.setdefault(key, draw(CRITERIA[key]))
    if depth < 3:
        kids = draw(st.lists(provisions(depth + 1), max_size=2))
        if kids:
            p["provision"] = kids
    return p


@st.composite
def consents(draw: st.DrawFn, n: int) -> dict:
    return {
        "resourceType": "Consent",
        "id": f"c{n}",
        "status": draw(st.sampled_from(["active"] * 4 + ["inactive", "draft"])),
        "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": draw(
            st.sampled_from(["patient-privacy"] * 4 + ["research"]))}]},
        "patient": {"reference": draw(st.sampled_from([MILLIE] * 5 + ["Patient/richard"]))},
        "provision": draw(provisions()),
    }


REQUESTER_BASES = [
    ("bath-mind", "voluntary", (BATH_MIND, ALLIANCE)),
    ("keynsham-gp", "gp", (KEYNSHAM_GP,)),
    ("icr", "icr", (ICR,)),
    ("sirona", "trust", (SIRONA,)),
    ("bath-mind", "voluntary", (BATH_MIND, ALLIANCE)),
    ("keynsham-gp", "gp", (KEYNSHAM_GP,)),
    ("awp", "trust", (AWP,)),  # the custodian
    ("app", "person", ()),
]


@st.composite
def requesters(draw: st.DrawFn) -> Requester:
    # sampled_from leans towards early entries: the rare cases go last.
    pid, kind, chain = draw(st.sampled_from(REQUESTER_BASES))
    if kind == "person":
        patient = draw(st.sampled_from([MILLIE, "Patient/richard"]))
        return Requester("app", "person", None, (), patient=patient,
                         purpose=draw(st.sampled_from(PURPOSES)))
    return Requester(
        pid, kind, chain[0], chain,
        practitioner=draw(st.sampled_from([None, DR_PATEL, SAM])),
        purpose=draw(st.sampled_from(["TREAT", "ETREAT", "ETREAT", "HRESCH"])),
        break_glass_reason=draw(st.sampled_from(["collapsed", None, "collapsed", "", "  "])),
    )


@st.composite
def resources(draw: st.DrawFn) -> dict:
    rtype = draw(st.sampled_from(TYPES))
    res: dict = {"resourceType": rtype, "id": draw(st.sampled_from(IDS))}
    meta: dict = {}
    tags = draw(st.lists(st.sampled_from(CODES), max_size=2, unique=True))
    if tags:
        meta["tag"] = [{"system": s, "code": c} for s, c in tags]
    labels = draw(st.lists(st.sampled_from(LABELS), max_size=2, unique=True))
    if labels:
        meta["security"] = [{"system": s, "code": c} for s, c in labels]
    where = draw(st.sampled_from(["period", "authoredOn", "occurrenceDateTime", "created",
                                  "lastUpdated", None]))
    if where == "period":
        res["period"] = {"start": draw(st.sampled_from(WHENS))}
    elif where == "lastUpdated":
        meta["lastUpdated"] = draw(st.sampled_from(WHENS))
    elif where is not None:
        res[where] = draw(st.sampled_from(WHENS))
    if draw(st.booleans()):
        # a later-in-order date too, which must lose to the earlier one
        res["created"] = draw(st.sampled_from(WHENS))
    if meta:
        res["meta"] = meta
    return res


def check_agreement(cs: tuple, req: Requester, res: dict, now: datetime) -> None:
    f = PatientFacts(MILLIE, ("Organization/awp-bath-cmht", AWP), tuple(cs), 0)
    note(f"consents={cs}\nrequester={req}\nresource={res}\nnow={now}")
    expected = naive_decide(req, res, f, int((now - EPOCH).total_seconds()))
    event(expected[1])
    got = decide(req, res, f, now)
    # The safety property first, then exact agreement.
    assert not (got.permit and not expected[0]), f"engine discloses: {got}"
    assert (got.permit, got.basis, got.break_glass) == expected


some_consents = st.integers(0, 3).flatmap(lambda n: st.tuples(*[consents(i) for i in range(n)]))


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(some_consents, requesters(), resources(), st.sampled_from(NOWS))
def test_engine_agrees_exactly_with_the_naive_reading_of_the_contract(cs, req, res, now):
    check_agreement(cs, req, res, now)


@st.composite
def emergencies(draw: st.DrawFn) -> Requester:
    pid, kind, chain = draw(st.sampled_from(REQUESTER_BASES[1:4]))  # gp, icr, trust
    practitioner = draw(st.sampled_from([None, DR_PATEL]))
    return Requester(pid, kind, chain[0], chain, practitioner=practitioner,
                     purpose="ETREAT", break_glass_reason="collapsed")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(some_consents, emergencies(), resources(), st.sampled_from(NOWS))
def test_break_glass_agrees_exactly_with_the_naive_reading_of_the_contract(cs, req, res, now):
    check_agreement(cs, req, res, now)


@st.composite
def single_criterion_consents(draw: st.DrawFn) -> tuple[dict]:
    """One active consent whose root states one criterion: rule 3 under a microscope."""
    key = draw(st.sampled_from(sorted(CRITERIA)))
    root = {"type": draw(st.sampled_from(["permit", "deny"])), key: draw(CRITERIA[key])}
    return ({"resourceType": "Consent", "id": "one", "status": "active",
             "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}]},
             "patient": {"reference": MILLIE}, "provision": root},)


@settings(max_examples=600, deadline=None)
@given(single_criterion_consents(), requesters(), resources(), st.sampled_from(NOWS))
def test_each_criterion_agrees_exactly_with_the_naive_reading(cs, req, res, now):
    check_agreement(cs, req, res, now)


def test_naive_evaluator_sanity():
    # The reference itself must read the contract right on a known case.
    consent = {"resourceType": "Consent", "id": "c", "status": "active",
               "scope": {"coding": [{"system": CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}]},
               "patient": {"reference": MILLIE},
               "provision": {"type": "deny", "provision": [
                   {"type": "permit", "actor": [{"reference": {"reference": ALLIANCE}}]}]}}
    f = PatientFacts(MILLIE, (AWP,), (consent,), 0)
    vol = Requester("bath-mind", "voluntary", BATH_MIND, (BATH_MIND, ALLIANCE))
    gp = Requester("gp", "gp", KEYNSHAM_GP, (KEYNSHAM_GP,))
    now = int((NOWS[0] - EPOCH).total_seconds())
    assert naive_decide(vol, {"resourceType": "Goal", "id": "a"}, f, now) == (
        True, "consent", False)
    assert naive_decide(gp, {"resourceType": "Goal", "id": "a"}, f, now) == (
        False, "denied", False)
    assert seconds("2026-06-01") == (seconds("2026-06-01T00:00:00Z")[0],
                                     seconds("2026-06-01T23:59:59Z")[0])
    assert timedelta(seconds=1).total_seconds() == 1
