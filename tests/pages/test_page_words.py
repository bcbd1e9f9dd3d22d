"""The pure parts of the person's pages: a grid into sharing choices (and back, through
the engine), what changes in words, and the access log in words."""

from __future__ import annotations

from datetime import UTC, date

from carebridge.consent.choices import choices_to_consent, validate_choices
from carebridge.consent.decide import decide
from carebridge.consent.model import PatientFacts, Requester
from carebridge.consent.sharing_form import (
    DETAILS,
    OTHER,
    RecipientChoice,
    chain_is_crisis,
    chain_period,
    choices_document,
    compare,
    provision_chain,
)
from carebridge.mappings.access_log import change_entry, event_entry
from carebridge.mappings.plan_words import plan_words
from carebridge.mappings.vocabulary import SECTION_SYSTEM

COLUMNS = [DETAILS, "plan", "daily-activities", "crisis-plan", OTHER]
BATH_MIND = "Organization/bath-mind"
ALLIANCE = "Organization/banes-voluntary-alliance"


def resources() -> dict[str, dict]:
    def section(code: str) -> dict:
        return {
            "resourceType": "CarePlan",
            "id": code,
            "meta": {"tag": [{"system": SECTION_SYSTEM, "code": code}]},
        }

    return {
        DETAILS: {"resourceType": "Patient", "id": "millie"},
        "plan": section("plan"),
        "daily-activities": section("daily-activities"),
        "crisis-plan": section("crisis-plan"),
        OTHER: {"resourceType": "Consent", "id": "c"},
    }


def engine_row(choice: RecipientChoice) -> dict[str, bool]:
    """What the one enforcement function says for Bath Mind under these choices."""
    doc = choices_document("Patient/millie", [choice], COLUMNS)
    validate_choices(doc)
    facts = PatientFacts(
        patient="Patient/millie", consents=(choices_to_consent(doc, "x"),), consent_version=1
    )
    bath_mind = Requester("bath-mind", "voluntary", BATH_MIND, (BATH_MIND, ALLIANCE))
    return {col: decide(bath_mind, r, facts).permit for col, r in resources().items()}


def test_every_shape_of_row_saves_as_exactly_its_yes_cells():
    rows = [
        dict.fromkeys(COLUMNS, True),
        dict.fromkeys(COLUMNS, False),
        {**dict.fromkeys(COLUMNS, True), "crisis-plan": False},
        {**dict.fromkeys(COLUMNS, True), DETAILS: False},
        {**dict.fromkeys(COLUMNS, True), DETAILS: False, "crisis-plan": False},
        {**dict.fromkeys(COLUMNS, False), DETAILS: True},
        {**dict.fromkeys(COLUMNS, False), "daily-activities": True, "plan": True},
        {**dict.fromkeys(COLUMNS, False), "daily-activities": True, DETAILS: True},
    ]
    for see in rows:
        assert engine_row(RecipientChoice(BATH_MIND, see)) == see, see


def test_a_no_stays_unsaid_so_a_crisis_yes_can_still_apply():
    doc = choices_document(
        "Patient/millie",
        [RecipientChoice(BATH_MIND, {**dict.fromkeys(COLUMNS, False), "plan": True}, crisis="yes")],
        COLUMNS,
        recorded_by="Practitioner/sam-patel",
        present=["Practitioner/sam-patel"],
    )
    assert doc["shares"] == [{"recipient": BATH_MIND, "allow": True, "sections": ["plan"]}]
    assert doc["crisis"] == [{"recipient": BATH_MIND, "allow": True, "sections": "all"}]
    assert doc["recordedBy"] == doc["present"][0] == "Practitioner/sam-patel"


def test_dates_and_crisis_are_read_from_the_provisions_that_decided():
    consent = choices_to_consent(
        {
            "patient": "Patient/millie",
            "shares": [{"recipient": BATH_MIND, "allow": True, "from": "2026-05-03", "until": "2027-05-03"}],
            "crisis": [{"recipient": BATH_MIND, "allow": False}],
        }
    )
    assert chain_period(provision_chain(consent, "provision.provision[0]")) == ("2026-05-03", "2027-05-03")
    assert not chain_is_crisis(provision_chain(consent, "provision.provision[0]"))
    assert chain_is_crisis(provision_chain(consent, "provision.provision[1]"))
    assert provision_chain(consent, "provision.provision[7]") == []
    assert provision_chain(consent, "nonsense") == []


def test_what_will_change_says_who_loses_what_and_is_asked_to_delete():
    before = {BATH_MIND: {"daily-activities": "yes", "crisis-plan": "no"}, "Organization/gp": {"plan": "no"}}
    after = {BATH_MIND: {"daily-activities": "no", "crisis-plan": "yes"}, "Organization/gp": {"plan": "no"}}
    names = {BATH_MIND: "Bath Mind", "Organization/gp": "Keynsham Health Centre"}
    changes = compare(names, COLUMNS, before, after, {}, {})
    assert len(changes) == 1
    assert changes[0].sentences() == [
        "Bath Mind will be able to see your crisis plan.",
        "Bath Mind will no longer see your daily activities.",
    ]
    assert changes[0].asked_to_delete
    partly = compare(names, COLUMNS, {BATH_MIND: {"plan": "yes"}}, {BATH_MIND: {"plan": "some"}}, {}, {})
    assert partly[0].lost == ["plan"]


def test_the_access_log_in_words():
    def partner_of(pid: str):
        return {"bath-mind": ("Bath Mind", "voluntary"), "millie-app": ("Millie's own page", "person")}.get(
            pid
        )

    def name_of(ref: str):
        return {"Practitioner/sam-patel": "Sam Patel", "Organization/bath-mind": "Bath Mind"}.get(ref)

    def label_of(ref: str):
        return {
            "CarePlan/millie-daily-activities": "daily activities",
            "Patient/millie": "name, address and NHS number",
        }.get(ref)

    def event(partner: str, *refs: str, **extra) -> dict:
        return {
            "resourceType": "AuditEvent",
            "recorded": "2026-05-03T13:02:00Z",
            "agent": [
                {
                    "who": {
                        "identifier": {
                            "system": "https://carebridge.example/fhir/Id/partner",
                            "value": partner,
                        }
                    }
                }
            ],
            "entity": [{"what": {"reference": r}, "role": {"code": "4"}} for r in refs],
            **extra,
        }

    today = date(2026, 6, 1)
    utc = UTC
    look = event_entry(
        event("bath-mind", "CarePlan/millie-daily-activities/_history/2"),
        partner_of,
        name_of,
        label_of,
        utc,
        today,
    )
    assert look.sentence == "Bath Mind looked at your daily activities on 3 May at 13:02."
    mine = event_entry(
        event("millie-app", "Patient/millie/_history/1"), partner_of, name_of, label_of, utc, today
    )
    assert mine.you and mine.sentence == "You looked at your name, address and NHS number on 3 May at 13:02."
    older = event_entry(event("bath-mind"), partner_of, name_of, label_of, utc, date(2027, 1, 1))
    assert older.sentence == "Bath Mind looked at your record on 3 May 2026 at 13:02."
    with_staff = event("bath-mind", "CarePlan/millie-daily-activities")
    with_staff["agent"].append({"who": {"reference": "Practitioner/sam-patel"}})
    assert event_entry(with_staff, partner_of, name_of, label_of, utc, today).sentence.startswith(
        "Sam Patel at Bath Mind looked at"
    )

    consent = {"meta": {"lastUpdated": "2026-05-03T13:05:00Z"}}
    assert (
        change_entry(
            consent,
            "Patient/millie",
            "Practitioner/sam-patel",
            ["Practitioner/sam-patel"],
            name_of,
            utc,
            today,
        ).sentence
        == "You changed who can see your record, with Sam Patel, on 3 May at 13:05."
    )
    assert change_entry(consent, "Patient/millie", "Patient/millie", [], name_of, utc, today).sentence == (
        "You changed who can see your record on 3 May at 13:05."
    )


def test_the_plan_in_the_persons_words():
    words = plan_words(
        [
            {
                "resourceType": "CarePlan",
                "meta": {"tag": [{"system": SECTION_SYSTEM, "code": "plan"}]},
                "title": "Millie's plan",
                "description": "My plan.",
            },
            {
                "resourceType": "Goal",
                "meta": {"tag": [{"system": SECTION_SYSTEM, "code": "recovery-goals"}]},
                "description": {"text": "Start the course in September."},
            },
            {
                "resourceType": "CarePlan",
                "meta": {"tag": [{"system": SECTION_SYSTEM, "code": "recovery-goals"}]},
                "description": "My goals.",
                "activity": [{"detail": {"description": "Swim", "scheduledString": "Fridays"}}],
            },
            {
                "resourceType": "CareTeam",
                "meta": {"tag": [{"system": SECTION_SYSTEM, "code": "contacts"}]},
                "participant": [
                    {"role": [{"text": "Peer support"}], "member": {"reference": "Organization/bath-mind"}}
                ],
            },
        ],
        lambda ref: "Bath Mind" if ref == "Organization/bath-mind" else None,
    )
    assert (words.title, words.summary) == ("Millie's plan", "My plan.")
    assert [p.code for p in words.parts] == ["contacts", "recovery-goals"]
    goals = words.parts[1]
    assert goals.paragraphs == ["My goals."]
    assert goals.items == ["Swim (Fridays)", "Start the course in September."]
    assert words.parts[0].items == ["Peer support: Bath Mind"]
