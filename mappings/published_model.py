"""The care-plan model, published as FHIR conformance resources.

Pure data, built from the codes declared in vocabulary.py and plan_codes.py so the
model, the mappings and the server cannot drift apart: StructureDefinition profiles on
CarePlan (the parent plan and its sections), Goal, CareTeam, RelatedPerson,
RiskAssessment, Consent and Task, each derived from the UK Core profile where one exists
(UK Core has no Goal or RiskAssessment profile, so those derive from the base resource);
and the section and activity CodeSystems with their ValueSets. The server serves them
read-only (server/model_routes.py) and `$validate` checks against them
(profile_check.py): differential elements give cardinalities, fixed values, required
bindings and reference targets; `constraint`s give FHIRPath invariants.
"""

from __future__ import annotations

from functools import cache

from carebridge.mappings.plan_codes import (
    ACTIVITY_CODES,
    ACTIVITY_SYSTEM,
    ACTIVITY_VALUESET,
    PROFILES,
    SECTION_VALUESET,
)
from carebridge.mappings.vocabulary import (
    CONSENT_SCOPE_SYSTEM,
    MENTAL_HEALTH_CARE_PLAN,
    PLAN_CODE,
    SECTION_SYSTEM,
    SECTIONS,
    SNOMED,
    TRANSFER_OF_CARE,
)

MODEL_VERSION = "0.1.0"
MODEL_DATE = "2025-03-01"
PUBLISHER = "carebridge"
UK_CORE = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-"
CORE = "http://hl7.org/fhir/StructureDefinition/"
PATIENT = [f"{UK_CORE}Patient"]
PARTIES = [
    f"{UK_CORE}{t}" for t in ("Practitioner", "PractitionerRole", "Organization", "Patient", "RelatedPerson")
]

SECTION_DEFINITIONS: dict[str, str] = {
    PLAN_CODE: "The person's whole care and support plan: the parent of every section.",
    "about-me": "Who the person is, in their own words: what matters to them.",
    "daily-activities": "Structured daily and weekly activities, independence and choice.",
    "contact-plan": "The agreed contact: how often, how (phone, home visit, a private place agreed in "
    "advance) and with whom.",
    "contacts": "Emergency and non-emergency contacts, and who is in the care team.",
    "medication-agreement": "What the person and their team agreed about medication.",
    "family-relationships": "Family and relationships: who the person wants involved.",
    "faith-spirituality": "Faith and spirituality.",
    "education-training": "Education and training.",
    "strengths-community": "Skills, strengths and community activities.",
    "recovery-goals": "Recovery goals in the person's own words (WRAP, Recovery Star scores where used).",
    "crisis-plan": "What to do in a crisis, and who to call.",
    "risk-assessment": "Risks, discussed openly with the person.",
    "transfer": "A gradual move between services, week by week.",
}


def _tag_is(code: str) -> str:
    return f"meta.tag.where(system = '{SECTION_SYSTEM}' and code = '{code}').exists()"


def _codes(codes: list[str]) -> str:
    return "(" + " | ".join(f"'{c}'" for c in codes) + ")"


def _el(rtype: str, path: str, **rules: object) -> dict:
    element = f"{rtype}.{path}" if path else rtype
    return {"id": element, "path": element, **rules}


def _ref(rtype: str, path: str, targets: list[str], **rules: object) -> dict:
    return _el(rtype, path, type=[{"code": "Reference", "targetProfile": targets}], **rules)


def _section_tag(rtype: str, code: str | None) -> list[dict]:
    """meta.tag sliced by system: exactly one care-plan section tag (fixed, or any section)."""
    slice_id = f"{rtype}.meta.tag:section"
    code_rule: dict = (
        {"fixedCode": code}
        if code
        else {
            "binding": {
                "strength": "required",
                "valueSet": SECTION_VALUESET,
                "description": "A care-plan section",
            }
        }
    )
    return [
        _el(
            rtype,
            "meta.tag",
            slicing={"discriminator": [{"type": "value", "path": "system"}], "rules": "open"},
            min=1,
        ),
        {"id": slice_id, "path": f"{rtype}.meta.tag", "sliceName": "section", "min": 1, "max": "1"},
        {
            "id": f"{slice_id}.system",
            "path": f"{rtype}.meta.tag.system",
            "min": 1,
            "fixedUri": SECTION_SYSTEM,
        },
        {"id": f"{slice_id}.code", "path": f"{rtype}.meta.tag.code", "min": 1, **code_rule},
    ]


def _profile(
    key: str,
    name: str,
    title: str,
    rtype: str,
    base: str,
    description: str,
    elements: list[dict],
    invariants: list[tuple[str, str, str, str]],
) -> dict:
    url = PROFILES[key]
    root = _el(
        rtype,
        "",
        constraint=[
            {"key": k, "severity": severity, "human": human, "expression": expression, "source": url}
            for k, severity, human, expression in invariants
        ],
    )
    return {
        "resourceType": "StructureDefinition",
        "id": url.rsplit("/", 1)[1],
        "url": url,
        "version": MODEL_VERSION,
        "name": name,
        "title": title,
        "status": "active",
        "date": MODEL_DATE,
        "publisher": PUBLISHER,
        "description": description,
        "fhirVersion": "4.0.1",
        "kind": "resource",
        "abstract": False,
        "type": rtype,
        "baseDefinition": base,
        "derivation": "constraint",
        "differential": {"element": [root, *elements]},
    }


def _care_plan() -> dict:
    return _profile(
        "plan",
        "CarebridgeCarePlan",
        "carebridge care plan (the parent plan)",
        "CarePlan",
        f"{UK_CORE}CarePlan",
        "A person's whole mental-health care and support plan: the parent CarePlan whose sections are "
        "child CarePlans (partOf it), each tagged with its section code so consent can work on whole "
        "resources (CONTRACTS.md section 3).",
        [
            *_section_tag("CarePlan", PLAN_CODE),
            _el("CarePlan", "partOf", max="0"),
            _ref("CarePlan", "subject", PATIENT),
            _el(
                "CarePlan",
                "activity.detail.code",
                binding={"strength": "extensible", "valueSet": ACTIVITY_VALUESET},
            ),
        ],
        [
            (
                "cb-plan-1",
                "error",
                "A carebridge plan is a mental health care plan (SNOMED CT 718347000)",
                f"category.coding.where(system = '{SNOMED}' and "
                f"code = '{MENTAL_HEALTH_CARE_PLAN['code']}').exists()",
            ),
            ("cb-plan-2", "error", "The plan is about a person", "subject.reference.exists()"),
        ],
    )


def _care_plan_section() -> dict:
    sections = list(SECTIONS)
    return _profile(
        "section",
        "CarebridgeCarePlanSection",
        "carebridge care-plan section",
        "CarePlan",
        f"{UK_CORE}CarePlan",
        "One section of a person's care plan (about me, daily activities, crisis plan, ...): a child "
        "CarePlan, partOf the parent plan, tagged with exactly one section code. The person's own words "
        "are in description, verbatim.",
        [
            *_section_tag("CarePlan", None),
            _ref("CarePlan", "partOf", [PROFILES["plan"]], min=1, max="1"),
            _ref("CarePlan", "subject", PATIENT),
            _ref("CarePlan", "goal", [PROFILES["Goal"]]),
            _el(
                "CarePlan",
                "activity.detail.code",
                binding={"strength": "extensible", "valueSet": ACTIVITY_VALUESET},
            ),
        ],
        [
            (
                "cb-section-1",
                "error",
                "A section carries exactly one care-plan section tag, and it is not the parent's 'plan'",
                f"meta.tag.where(system = '{SECTION_SYSTEM}').count() = 1 and "
                f"meta.tag.where(system = '{SECTION_SYSTEM}').code in {_codes(sections)}",
            ),
            ("cb-section-2", "error", "A section is about a person", "subject.reference.exists()"),
            (
                "cb-section-3",
                "error",
                "Only the recovery-goals section refers to goals",
                f"goal.exists() implies {_tag_is('recovery-goals')}",
            ),
            (
                "cb-section-4",
                "warning",
                "A section should say something: the person's words in description, or activities",
                "description.exists() or activity.exists() or goal.exists() or supportingInfo.exists()",
            ),
        ],
    )


def _goal() -> dict:
    return _profile(
        "Goal",
        "CarebridgeRecoveryGoal",
        "carebridge recovery goal",
        "Goal",
        f"{CORE}Goal",
        "A recovery goal in the person's own words (description.text, verbatim), in the recovery-goals "
        "section; a Recovery Star area and the score the person aims for go in target. UK Core has no Goal "
        "profile, so this derives from the base resource.",
        [
            *_section_tag("Goal", "recovery-goals"),
            _el("Goal", "description.text", min=1),
            _ref("Goal", "subject", PATIENT),
            _ref("Goal", "expressedBy", PATIENT),
        ],
        [
            (
                "cb-goal-1",
                "error",
                "A Recovery Star target is a whole-number score from 1 to 10",
                "target.where(measure.text.startsWith('Recovery Star: ')).all("
                "detail.ofType(integer).exists() and detail.ofType(integer) >= 1 and "
                "detail.ofType(integer) <= 10)",
            ),
            ("cb-goal-2", "error", "The goal is the person's", "subject.reference.exists()"),
        ],
    )


def _care_team() -> dict:
    return _profile(
        "CareTeam",
        "CarebridgeCareTeam",
        "carebridge care team",
        "CareTeam",
        f"{UK_CORE}CareTeam",
        "Who is involved in the person's care: the care coordinator and the agreed contacts (contacts "
        "section).",
        [
            *_section_tag("CareTeam", "contacts"),
            _ref("CareTeam", "subject", PATIENT, min=1),
            _ref("CareTeam", "participant.member", [*PARTIES, f"{UK_CORE}CareTeam"]),
        ],
        [("cb-team-1", "warning", "A care team has someone in it", "participant.exists()")],
    )


def _related_person() -> dict:
    return _profile(
        "RelatedPerson",
        "CarebridgeRelatedPerson",
        "carebridge family member, carer or contact",
        "RelatedPerson",
        f"{UK_CORE}RelatedPerson",
        "A family member or carer (family-relationships section) or an emergency or non-emergency contact "
        "(contacts section), with the person's own word for who they are.",
        [
            *_section_tag("RelatedPerson", None),
            _ref("RelatedPerson", "patient", PATIENT),
            _el("RelatedPerson", "name", min=1),
        ],
        [
            (
                "cb-related-1",
                "error",
                "A family member or contact belongs to the family-relationships or contacts section",
                f"{_tag_is('family-relationships')} or {_tag_is('contacts')}",
            ),
            ("cb-related-2", "error", "Say who they are to the person", "relationship.exists()"),
        ],
    )


def _risk_assessment() -> dict:
    return _profile(
        "RiskAssessment",
        "CarebridgeRiskAssessment",
        "carebridge risk assessment",
        "RiskAssessment",
        f"{CORE}RiskAssessment",
        "Risks, talked about openly with the person (risk-assessment section). UK Core has no "
        "RiskAssessment profile, so this derives from the base resource.",
        [
            *_section_tag("RiskAssessment", "risk-assessment"),
            _ref("RiskAssessment", "subject", PATIENT),
            _ref("RiskAssessment", "performer", PARTIES),
        ],
        [
            (
                "cb-risk-1",
                "error",
                "Each risk says what might happen",
                "prediction.all(outcome.exists())",
            )
        ],
    )


def _consent() -> dict:
    codes = [PLAN_CODE, *SECTIONS]
    every = "(provision | provision.repeat(provision))"
    return _profile(
        "Consent",
        "CarebridgeConsent",
        "carebridge sharing consent",
        "Consent",
        f"{UK_CORE}Consent",
        "A person's choice of who may see which parts of their record, for what purpose, when "
        "(CONTRACTS.md section 4). Provisions name organisations or practitioners and care-plan sections.",
        [
            _ref("Consent", "patient", PATIENT, min=1),
            _el("Consent", "provision", min=1),
        ],
        [
            (
                "cb-consent-1",
                "error",
                "A sharing consent has scope patient-privacy",
                f"scope.coding.where(system = '{CONSENT_SCOPE_SYSTEM}' and "
                "code = 'patient-privacy').exists()",
            ),
            (
                "cb-consent-2",
                "error",
                "Care-plan section codes in a provision are codes of the section CodeSystem",
                f"{every}.code.coding.where(system = '{SECTION_SYSTEM}').all(code in {_codes(codes)})",
            ),
            (
                "cb-consent-3",
                "error",
                "A provision's actor is an Organization or a Practitioner (only they make requests)",
                f"{every}.actor.reference.all(reference.matches('(^|/)(Organization|Practitioner)/[A-Za-z0-9.-]+$'))",
            ),
        ],
    )


def _task() -> dict:
    return _profile(
        "Task",
        "CarebridgeTransferTask",
        "carebridge transfer of care task",
        "Task",
        f"{UK_CORE}Task",
        "A gradual transfer between services: the parent Task (SNOMED CT 308292007 Transfer of care) and "
        "one child Task per week, partOf it, all in the person's transfer section.",
        [
            *_section_tag("Task", "transfer"),
            _ref("Task", "for", PATIENT, min=1),
            _ref("Task", "focus", [PROFILES["plan"], f"{UK_CORE}Task", f"{UK_CORE}Communication", *PATIENT]),
            _ref("Task", "partOf", [PROFILES["Task"]], max="1"),
        ],
        [
            (
                "cb-task-1",
                "error",
                "A transfer is coded Transfer of care (SNOMED CT 308292007), or is a week of one (partOf it)",
                f"partOf.exists() or code.coding.where(system = '{SNOMED}' and code = "
                f"'{TRANSFER_OF_CARE['code']}').exists()",
            )
        ],
    )


def _code_system(cid: str, url: str, valueset: str, name: str, title: str, text: str, concepts: list) -> dict:
    return {
        "resourceType": "CodeSystem",
        "id": cid,
        "url": url,
        "version": MODEL_VERSION,
        "name": name,
        "title": title,
        "status": "active",
        "date": MODEL_DATE,
        "publisher": PUBLISHER,
        "description": text,
        "caseSensitive": True,
        "valueSet": valueset,
        "content": "complete",
        "count": len(concepts),
        "concept": concepts,
    }


def _value_set(cid: str, url: str, system: str, name: str, title: str, text: str, concepts: list) -> dict:
    return {
        "resourceType": "ValueSet",
        "id": cid,
        "url": url,
        "version": MODEL_VERSION,
        "name": name,
        "title": title,
        "status": "active",
        "date": MODEL_DATE,
        "publisher": PUBLISHER,
        "description": text,
        "compose": {"include": [{"system": system}]},
        "expansion": {
            "timestamp": f"{MODEL_DATE}T00:00:00Z",
            "total": len(concepts),
            "contains": [{"system": system, "code": c["code"], "display": c["display"]} for c in concepts],
        },
    }


def _terminology() -> list[dict]:
    sections = [
        {"code": code, "display": SECTIONS.get(code, "My care and support plan"), "definition": definition}
        for code, definition in SECTION_DEFINITIONS.items()
    ]
    activities = [
        {"code": code, "display": display, "definition": display} for code, display in ACTIVITY_CODES.items()
    ]
    section_text = "The sections of a carebridge care plan (CONTRACTS.md section 3); 'plan' tags the parent."
    activity_text = "Coded kinds of care-plan activity: the agreed ways of keeping in touch, and the review."
    return [
        _code_system(
            "care-plan-section",
            SECTION_SYSTEM,
            SECTION_VALUESET,
            "CarePlanSection",
            "Care-plan sections",
            section_text,
            sections,
        ),
        _value_set(
            "care-plan-section",
            SECTION_VALUESET,
            SECTION_SYSTEM,
            "CarePlanSection",
            "Care-plan sections",
            section_text,
            sections,
        ),
        _code_system(
            "care-plan-activity",
            ACTIVITY_SYSTEM,
            ACTIVITY_VALUESET,
            "CarePlanActivity",
            "Care-plan activities",
            activity_text,
            activities,
        ),
        _value_set(
            "care-plan-activity",
            ACTIVITY_VALUESET,
            ACTIVITY_SYSTEM,
            "CarePlanActivity",
            "Care-plan activities",
            activity_text,
            activities,
        ),
    ]


@cache
def published_model() -> tuple[dict, ...]:
    """Every conformance resource of the model (treat them as read-only)."""
    return (
        _care_plan(),
        _care_plan_section(),
        _goal(),
        _care_team(),
        _related_person(),
        _risk_assessment(),
        _consent(),
        _task(),
        *_terminology(),
    )


def model_resource(rtype: str, rid: str) -> dict | None:
    return next((r for r in published_model() if r["resourceType"] == rtype and r["id"] == rid), None)


# The conformance resource types the model is made of.
MODEL_TYPES = ("StructureDefinition", "CodeSystem", "ValueSet")
