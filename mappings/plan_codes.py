"""Codes and identifier systems of the care-plan mappings, declared once here.

The section codes themselves are the contract's (vocabulary.py); this module adds what
the local formats and the published profiles need on top: how business identifiers are
spelled, the coded kinds of care-plan activity, the Recovery Star areas and the family
words that have an HL7 code.
"""

from __future__ import annotations

from carebridge.mappings.vocabulary import CANONICAL_BASE, SNOMED

# Business identifiers: re-importing a document finds what it wrote last time by these.
# One value per part of a person's plan: "<nhs>/plan", "<nhs>/section/<code>", ...
RECORD_SYSTEM = f"{CANONICAL_BASE}/Id/care-plan-record"
# Care coordinators, per custodian: "<organisation id>/<staff id or name>".
STAFF_SYSTEM = f"{CANONICAL_BASE}/Id/staff"
# Where an import came from: "<file name>#<record>".
IMPORT_SOURCE_SYSTEM = f"{CANONICAL_BASE}/Id/import-source"

# Kinds of planned activity that carry a code: the agreed ways of keeping in touch, and
# the plan's next review.
ACTIVITY_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/care-plan-activity"
REVIEW = "review"
CONTACT_METHODS: dict[str, str] = {
    "phone": "Phone call",
    "home-visit": "Home visit",
    "private-place": "Meeting in a private place agreed in advance",
    "clinic": "Appointment at a clinic or team base",
    "text-message": "Text message",
    "video-call": "Video call",
}
ACTIVITY_CODES: dict[str, str] = {REVIEW: "Review of this care plan", **CONTACT_METHODS}
# Words coordinators write for each method (lower case, hyphens as spaces).
METHOD_WORDS: dict[str, str] = {
    "phone": "phone",
    "phone call": "phone",
    "telephone": "phone",
    "home visit": "home-visit",
    "visit": "home-visit",
    "private place": "private-place",
    "private place agreed in advance": "private-place",
    "a private place agreed in advance": "private-place",
    "clinic": "clinic",
    "team base": "clinic",
    "text": "text-message",
    "text message": "text-message",
    "sms": "text-message",
    "video": "video-call",
    "video call": "video-call",
}

# Mental Health Recovery Star: the ten areas a person scores from 1 to 10.
RECOVERY_STAR_AREAS = (
    "Managing mental health",
    "Physical health and self-care",
    "Living skills",
    "Social networks",
    "Work",
    "Relationships",
    "Addictive behaviour",
    "Responsibilities",
    "Identity and self-esteem",
    "Trust and hope",
)
RECOVERY_STAR_PREFIX = "Recovery Star: "

RISK_PROBABILITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/risk-probability"
RISK_LEVELS = ("negligible", "low", "moderate", "high", "certain")
# SNOMED CT 225338004 |Risk assessment (procedure)|: what the RiskAssessment records.
RISK_ASSESSMENT_CODE = {"system": SNOMED, "code": "225338004", "display": "Risk assessment"}

ROLE_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
# The person's own word for a relative or friend -> HL7 v3 RoleCode (the word is kept too).
FAMILY_WORDS: dict[str, tuple[str, str]] = {
    "mother": ("MTH", "mother"),
    "mum": ("MTH", "mother"),
    "father": ("FTH", "father"),
    "dad": ("FTH", "father"),
    "parent": ("PRN", "parent"),
    "sister": ("SIS", "sister"),
    "brother": ("BRO", "brother"),
    "sibling": ("SIB", "sibling"),
    "wife": ("WIFE", "wife"),
    "husband": ("HUSB", "husband"),
    "spouse": ("SPS", "spouse"),
    "partner": ("DOMPART", "domestic partner"),
    "daughter": ("DAUC", "daughter"),
    "son": ("SONC", "son"),
    "child": ("CHILD", "child"),
    "grandmother": ("GRMTH", "grandmother"),
    "nan": ("GRMTH", "grandmother"),
    "grandfather": ("GRFTH", "grandfather"),
    "aunt": ("AUNT", "aunt"),
    "uncle": ("UNCLE", "uncle"),
    "cousin": ("COUSN", "cousin"),
    "niece": ("NIECE", "niece"),
    "nephew": ("NEPHEW", "nephew"),
    "friend": ("FRND", "unrelated friend"),
    "neighbour": ("NBOR", "neighbor"),
}

CONTACT_ROLE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0131"
EMERGENCY_CONTACT = {"system": CONTACT_ROLE_SYSTEM, "code": "C", "display": "Emergency Contact"}
CONTACT_PERSON = {"system": CONTACT_ROLE_SYSTEM, "code": "CP", "display": "Contact person"}

PROVENANCE_ACTIVITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
PROVENANCE_AGENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

# Published model: canonical URLs of the profiles and terminology (published_model.py).
PROFILE_BASE = f"{CANONICAL_BASE}/StructureDefinition"
PROFILES: dict[str, str] = {
    "plan": f"{PROFILE_BASE}/carebridge-care-plan",
    "section": f"{PROFILE_BASE}/carebridge-care-plan-section",
    "Goal": f"{PROFILE_BASE}/carebridge-recovery-goal",
    "CareTeam": f"{PROFILE_BASE}/carebridge-care-team",
    "RelatedPerson": f"{PROFILE_BASE}/carebridge-related-person",
    "RiskAssessment": f"{PROFILE_BASE}/carebridge-risk-assessment",
    "Consent": f"{PROFILE_BASE}/carebridge-consent",
    "Task": f"{PROFILE_BASE}/carebridge-transfer-task",
}
SECTION_VALUESET = f"{CANONICAL_BASE}/ValueSet/care-plan-section"
ACTIVITY_VALUESET = f"{CANONICAL_BASE}/ValueSet/care-plan-activity"
