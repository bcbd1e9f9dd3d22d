"""Code systems, identifier systems and codes carebridge speaks: declared once, here.

Everything else (profiles, the capability statement, the demo world, consent labels)
imports these names rather than repeating the strings.
"""

from __future__ import annotations

CANONICAL_BASE = "https://carebridge.example/fhir"

SECTION_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/care-plan-section"
PLAN_CODE = "plan"

# Care-plan sections, in the order a person reads them, with plain-English titles.
SECTIONS: dict[str, str] = {
    "about-me": "About me",
    "daily-activities": "My daily and weekly activities",
    "contact-plan": "How and when we keep in touch",
    "contacts": "People to contact",
    "medication-agreement": "My medication agreement",
    "family-relationships": "Family and relationships",
    "faith-spirituality": "Faith and spirituality",
    "education-training": "Education and training",
    "strengths-community": "My skills, strengths and community activities",
    "recovery-goals": "My recovery goals",
    "crisis-plan": "My crisis plan",
    "risk-assessment": "Risks, talked about openly",
    "transfer": "Moving between services",
}

# How a sentence names each section: "Bath Mind can see Millie's <phrase>".
SECTION_PHRASES: dict[str, str] = {
    "plan": "care plan",
    "about-me": "'about me' page",
    "daily-activities": "daily activities",
    "contact-plan": "contact plan",
    "contacts": "contacts",
    "medication-agreement": "medication agreement",
    "family-relationships": "family and relationships",
    "faith-spirituality": "faith and spirituality",
    "education-training": "education and training",
    "strengths-community": "skills, strengths and community activities",
    "recovery-goals": "recovery goals",
    "crisis-plan": "crisis plan",
    "risk-assessment": "risk assessment",
    "transfer": "transfer plan",
}

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
PARTNER_KIND_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/partner-kind"
CONSENT_SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_CATEGORY_SYSTEM = "http://loinc.org"
PURPOSE_OF_USE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
OBSERVATION_VALUE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
REDACTED = {"system": OBSERVATION_VALUE_SYSTEM, "code": "REDACTED"}
SNOMED = "http://snomed.info/sct"

# SNOMED CT: 718347000 |Mental health care plan|; 1092421000000100 is the UK
# extension concept for a Care Programme Approach care plan.
MENTAL_HEALTH_CARE_PLAN = {
    "system": SNOMED,
    "code": "718347000",
    "display": "Mental health care plan",
}
CPA_CARE_PLAN = {
    "system": SNOMED,
    "code": "1092421000000100",
    "display": "Care Programme Approach care plan",
}

PARTNER_KINDS = ("trust", "gp", "voluntary", "icr", "person")

# --- Transfers of care (mappings/handover.py) ---------------------------------------
# SNOMED CT 308292007 |Transfer of care (procedure)|: the code of a transfer's parent Task.
TRANSFER_OF_CARE = {"system": SNOMED, "code": "308292007", "display": "Transfer of care"}
# The parent Task's inputs name the plan's parameters so $pause/$resume and a receiving
# system can read them back without parsing prose.
TRANSFER_INPUT_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/transfer-input"
TRANSFER_INPUTS: dict[str, str] = {
    "frequency": "How often the person is contacted",
    "weeks": "Number of weeks the handover lasts",
    "pattern": "Handover pattern (gradual or custom)",
    "owners": "Who leads each week, A or B, in order",
    "care-coordinator": "Named care coordinator at the current service (A)",
    "key-worker": "Named key worker at the new service (B)",
    "named-worker": "The named worker who makes contact this week",
    "week": "Which week of the handover this is",
}
# Whose week it is: the current service (A) or the new one (B).
TRANSFER_SIDE_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/transfer-side"
# What planning a transfer found out, recorded on the parent Task (e.g. whether the GP
# was told, and why).
TRANSFER_OUTPUT_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/transfer-output"
TRANSFER_OUTPUTS: dict[str, str] = {
    "gp": "The GP practice considered for a notification",
    "gp-told": "Whether the GP was told about the transfer",
    "gp-decision": "Why the GP was or was not told, in plain words",
    "gp-notification": "The notification sent to the GP",
}
TASK_STATUS_SYSTEM = "http://hl7.org/fhir/task-status"
# Messages carebridge stores for partners to pick up (break-glass notices, transfers).
COMMUNICATION_CATEGORY_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/communication-category"
# The GP's transfer notice: its Communication category and the event of its MESH message.
GP_TRANSFER_NOTICE = "transfer-gp-notification"
TRANSFER_NOTICES: dict[str, str] = {
    GP_TRANSFER_NOTICE: "The GP is told about a transfer of care",
    "transfer-paused": "A transfer of care is paused",
    "transfer-resumed": "A transfer of care starts again",
}
# Events of the FHIR messages carebridge exchanges by MESH (MessageHeader.eventCoding).
MESSAGE_EVENT_SYSTEM = f"{CANONICAL_BASE}/CodeSystem/message-event"
MESSAGE_EVENTS: dict[str, str] = {
    GP_TRANSFER_NOTICE: "A GP practice is told about a transfer of care",
    "transfer-gp-notification-ack": "The GP practice has received the transfer notice",
    "communication": "A message from a partner",
    "shared-record-update": "A record the person shares with the partner, as it is now",
    "shared-record-recall": "A record the partner may no longer hold: delete it",
}

# Consent building blocks (CONTRACTS.md section 4).
CONSENT_SCOPE_PATIENT_PRIVACY = {"system": CONSENT_SCOPE_SYSTEM, "code": "patient-privacy"}
CONSENT_CATEGORY_PATIENT_CONSENT = {
    "system": CONSENT_CATEGORY_SYSTEM,
    "code": "59284-0",
    "display": "Patient Consent",
}
CONSENT_POLICY_OPTIN = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
    "code": "OPTIN",
}
CONSENT_ACTION_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentaction"
PARTICIPATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
RESOURCE_TYPE_SYSTEM = "http://hl7.org/fhir/resource-types"
