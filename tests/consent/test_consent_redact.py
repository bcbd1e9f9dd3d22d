"""CONTRACTS.md section 4, rule 7: references the requester may not see are removed."""

from __future__ import annotations

import copy

from carebridge.consent.redact import redact, references
from carebridge.mappings.vocabulary import REDACTED, SECTION_SYSTEM

VISIBLE = {"Patient/millie", "CarePlan/millie-plan", "Organization/bath-mind"}


def may_see(ref: str) -> bool:
    return ref in VISIBLE


def care_team() -> dict:
    return {
        "resourceType": "CareTeam",
        "id": "millie-team",
        "meta": {"tag": [{"system": SECTION_SYSTEM, "code": "contacts"}]},
        "text": {"status": "generated", "div": "<div>Sam (care coordinator), Mum</div>"},
        "subject": {"reference": "Patient/millie", "display": "Millie"},
        "participant": [
            {"role": [{"text": "care coordinator"}],
             "member": {"reference": "Practitioner/sam", "display": "Sam Okafor"}},
            {"member": {"reference": "RelatedPerson/millie-mum", "display": "Mum"}},
            {"member": {"reference": "Organization/bath-mind", "display": "Bath Mind"}},
        ],
        "managingOrganization": [{"reference": "Organization/awp", "display": "AWP"}],
    }


def test_everything_visible_returns_the_very_same_object():
    plan = {"resourceType": "CarePlan", "id": "x", "subject": {"reference": "Patient/millie"},
            "partOf": [{"reference": "CarePlan/millie-plan"}]}
    before = copy.deepcopy(plan)
    assert redact(plan, may_see) is plan
    assert plan == before


def test_hidden_references_are_removed_with_their_display_text():
    team = care_team()
    out = redact(team, may_see)
    assert out is not team
    assert "Sam Okafor" not in str(out) and "Mum" not in str(out) and "AWP" not in str(out)
    assert out["subject"] == {"reference": "Patient/millie", "display": "Millie"}
    # the participant with a role keeps its role; the one with only a member goes
    assert out["participant"] == [
        {"role": [{"text": "care coordinator"}]},
        {"member": {"reference": "Organization/bath-mind", "display": "Bath Mind"}},
    ]
    # a list left empty is dropped
    assert "managingOrganization" not in out


def test_redacted_copy_is_marked_once_and_the_original_is_untouched():
    team = care_team()
    before = copy.deepcopy(team)
    out = redact(team, may_see)
    assert out["meta"]["security"] == [REDACTED]
    assert out["meta"]["tag"] == team["meta"]["tag"]
    again = redact(out, may_see)
    assert again is out  # nothing left to remove
    out2 = redact({**team, "meta": {"security": [dict(REDACTED)]}}, may_see)
    assert out2["meta"]["security"] == [REDACTED]
    assert team == before


def test_marking_keeps_existing_security_labels():
    conf = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}
    goal = {"resourceType": "Goal", "id": "g", "meta": {"security": [conf]},
            "expressedBy": {"reference": "RelatedPerson/millie-mum"}}
    out = redact(goal, may_see)
    assert out["meta"]["security"] == [conf, REDACTED]
    assert "expressedBy" not in out


def test_narrative_is_dropped_when_anything_is_removed():
    assert "text" not in redact(care_team(), may_see)


def test_deeply_nested_lists_and_contained_resources_are_redacted():
    task = {
        "resourceType": "Task",
        "id": "handover",
        "contained": [{
            "resourceType": "Provenance", "id": "p1",
            "text": {"status": "generated", "div": "<div>by Dr Jones</div>"},
            "agent": [{"who": {"reference": "Practitioner/dr-jones", "display": "Dr Jones"}}],
            "target": [{"reference": "#x"}],
        }],
        "input": [{"type": {"text": "plan"},
                   "valueReference": {"reference": "CarePlan/millie-crisis-plan"}}],
        "extension": [
            {"url": "https://carebridge.example/fhir/StructureDefinition/key-worker",
             "valueReference": {"reference": "Practitioner/dr-jones"}},
            {"url": "https://carebridge.example/fhir/StructureDefinition/receiver",
             "valueReference": {"reference": "Organization/bath-mind"}},
        ],
        "for": {"reference": "Patient/millie"},
    }
    out = redact(task, may_see)
    contained = out["contained"][0]
    assert "agent" not in contained  # its only agent went, and the list with it
    assert contained["target"] == [{"reference": "#x"}]  # local references stay
    assert "text" not in contained
    assert out["input"] == [{"type": {"text": "plan"}}]
    # the extension whose value went is dropped entirely (a bare url says nothing)
    assert out["extension"] == [task["extension"][1]]
    assert out["for"] == {"reference": "Patient/millie"}


def test_absolute_versioned_and_urn_references_are_checked():
    asked: list[str] = []

    def spy(ref: str) -> bool:
        asked.append(ref)
        return ref == "Patient/millie"

    goal = {"resourceType": "Goal", "id": "g",
            "subject": {"reference": "https://carebridge.example/fhir/Patient/millie"},
            "expressedBy": {"reference": "RelatedPerson/mum/_history/2"},
            "addresses": [{"reference": "urn:uuid:4f1c-0000"}]}
    out = redact(goal, spy)
    assert sorted(asked) == ["Patient/millie", "RelatedPerson/mum", "urn:uuid:4f1c-0000"]
    assert out["subject"] == goal["subject"] and "expressedBy" not in out
    assert "addresses" not in out


def test_each_target_is_asked_about_once():
    asked: list[str] = []
    team = care_team()
    team["participant"].append({"member": {"reference": "Practitioner/sam"}})
    redact(team, lambda r: asked.append(r) or False)
    assert len(asked) == len(set(asked))


def test_references_lists_every_target_normalised():
    team = care_team()
    team["contained"] = [{"resourceType": "Provenance", "id": "p",
                          "agent": [{"who": {"reference": "http://x/fhir/Practitioner/jo"}}],
                          "target": [{"reference": "#p"}, {"reference": "urn:uuid:1"}]}]
    assert references(team) == {
        "Patient/millie", "Practitioner/sam", "RelatedPerson/millie-mum",
        "Organization/bath-mind", "Organization/awp", "Practitioner/jo",
    }


def test_consent_actor_references_inside_references_are_handled():
    c = {"resourceType": "Consent", "id": "c", "patient": {"reference": "Patient/millie"},
         "provision": {"actor": [{"role": {"text": "recipient"},
                                  "reference": {"reference": "Organization/keynsham-gp"}}]}}
    assert "Organization/keynsham-gp" in references(c)
    out = redact(c, may_see)
    assert out["provision"]["actor"] == [{"role": {"text": "recipient"}}]
