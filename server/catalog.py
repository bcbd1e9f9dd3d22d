"""What carebridge serves: resource types, interactions and search parameters.

Declared once here. The routes, the search indexer, the write-time reference checks and
the CapabilityStatement are all derived from this table, so they cannot disagree.
Paths are dotted element paths from the resource root (lists are walked through);
`Type.path` is also the FHIRPath expression published for the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carebridge.mappings.vocabulary import CANONICAL_BASE

INTERACTIONS = (
    "read",
    "vread",
    "update",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)


@dataclass(frozen=True, slots=True)
class SearchParam:
    name: str
    type: str  # token | reference | date | string | uri
    paths: tuple[str, ...]
    targets: tuple[str, ...] = ()  # allowed reference targets (reference params)
    doc: str = ""

    def expression(self, resource_type: str) -> str:
        return " | ".join(f"{resource_type}.{p}" for p in self.paths)


@dataclass(frozen=True, slots=True)
class ResourceType:
    name: str
    params: tuple[SearchParam, ...] = ()
    # Element path naming the patient whose compartment holds this resource.
    compartment: tuple[str, ...] = ()
    # Reference elements whose target types are checked on write (element -> types).
    reference_targets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    interactions: tuple[str, ...] = INTERACTIONS
    doc: str = ""

    def param(self, name: str) -> SearchParam | None:
        for p in self.params:
            if p.name == name:
                return p
        for p in COMMON_PARAMS:
            if p.name == name:
                return p
        return None

    def all_params(self) -> tuple[SearchParam, ...]:
        return COMMON_PARAMS + self.params


def _tok(name: str, *paths: str, doc: str = "") -> SearchParam:
    return SearchParam(name, "token", paths, doc=doc)


def _ref(name: str, *paths: str, targets: tuple[str, ...], doc: str = "") -> SearchParam:
    return SearchParam(name, "reference", paths, targets, doc=doc)


def _date(name: str, *paths: str, doc: str = "") -> SearchParam:
    return SearchParam(name, "date", paths, doc=doc)


def _str(name: str, *paths: str, doc: str = "") -> SearchParam:
    return SearchParam(name, "string", paths, doc=doc)


def _published(name: str, doc: str, *extra: SearchParam) -> ResourceType:
    """A conformance resource type of the published model: read and search only."""
    params = (
        SearchParam("url", "uri", ("url",), doc="Canonical URL"),
        _str("name", "name"),
        _str("title", "title"),
        _tok("version", "version"),
        _tok("status", "status"),
        *extra,
    )
    return ResourceType(name, params=params, interactions=("read", "search-type"), doc=doc)


# Parameters every type has. _id and _lastUpdated are answered from the resource row.
COMMON_PARAMS: tuple[SearchParam, ...] = (
    SearchParam("_id", "token", ("id",), doc="Logical id of the resource"),
    SearchParam("_lastUpdated", "date", ("meta.lastUpdated",), doc="When it last changed"),
    _tok("_tag", "meta.tag", doc="Tags, e.g. the care-plan section code"),
    _tok("_security", "meta.security", doc="Security labels"),
    SearchParam("_profile", "uri", ("meta.profile",), doc="Profiles claimed"),
)

PATIENT_LIKE = ("Patient",)
PARTY = ("Organization", "Practitioner", "PractitionerRole", "Patient", "RelatedPerson", "CareTeam")
ORG = ("Organization",)

RESOURCE_TYPES: dict[str, ResourceType] = {
    rt.name: rt
    for rt in (
        ResourceType(
            "Patient",
            params=(
                _tok("identifier", "identifier", doc="NHS number: https://fhir.nhs.uk/Id/nhs-number|NNN"),
                _str("family", "name.family"),
                _str("given", "name.given"),
                _str("name", "name.family", "name.given", "name.text"),
                _date("birthdate", "birthDate"),
                _tok("gender", "gender"),
                _tok("active", "active"),
                _ref("organization", "managingOrganization", targets=ORG),
                _ref(
                    "general-practitioner",
                    "generalPractitioner",
                    targets=("Organization", "Practitioner", "PractitionerRole"),
                ),
            ),
            compartment=("id",),
            reference_targets={
                "managingOrganization": ORG,
                "generalPractitioner": ("Organization", "Practitioner", "PractitionerRole"),
            },
            doc="The person. managingOrganization is the custodian of their record.",
        ),
        ResourceType(
            "Practitioner",
            params=(
                _tok("identifier", "identifier"),
                _str("family", "name.family"),
                _str("given", "name.given"),
                _str("name", "name.family", "name.given", "name.text"),
                _tok("active", "active"),
            ),
        ),
        ResourceType(
            "PractitionerRole",
            params=(
                _tok("identifier", "identifier"),
                _ref("practitioner", "practitioner", targets=("Practitioner",)),
                _ref("organization", "organization", targets=ORG),
                _tok("role", "code"),
                _tok("active", "active"),
            ),
            reference_targets={"practitioner": ("Practitioner",), "organization": ORG},
        ),
        ResourceType(
            "Organization",
            params=(
                _tok(
                    "identifier",
                    "identifier",
                    doc="ODS code: https://fhir.nhs.uk/Id/ods-organization-code|CODE",
                ),
                _str("name", "name", "alias"),
                _ref("partof", "partOf", targets=ORG),
                _tok("type", "type"),
                _tok("active", "active"),
            ),
            reference_targets={"partOf": ORG},
        ),
        ResourceType(
            "RelatedPerson",
            params=(
                _tok("identifier", "identifier"),
                _ref("patient", "patient", targets=PATIENT_LIKE),
                _str("name", "name.family", "name.given", "name.text"),
                _tok("relationship", "relationship"),
                _tok("active", "active"),
            ),
            compartment=("patient",),
            reference_targets={"patient": PATIENT_LIKE},
        ),
        ResourceType(
            "CareTeam",
            params=(
                _tok("identifier", "identifier"),
                _ref("patient", "subject", targets=PATIENT_LIKE),
                _ref("subject", "subject", targets=("Patient", "Group")),
                _tok("status", "status"),
                _tok("category", "category"),
                _date("date", "period"),
                _ref("participant", "participant.member", targets=PARTY),
            ),
            compartment=("subject",),
            reference_targets={"subject": ("Patient", "Group"), "participant.member": PARTY},
        ),
        ResourceType(
            "CarePlan",
            params=(
                _tok("identifier", "identifier"),
                _ref("patient", "subject", targets=PATIENT_LIKE),
                _ref("subject", "subject", targets=("Patient", "Group")),
                _tok("status", "status"),
                _tok("intent", "intent"),
                _tok("category", "category"),
                _date("date", "period"),
                _ref("part-of", "partOf", targets=("CarePlan",)),
                _ref("care-team", "careTeam", targets=("CareTeam",)),
                _ref("goal", "goal", targets=("Goal",)),
                _ref("author", "author", targets=PARTY),
            ),
            compartment=("subject",),
            reference_targets={
                "subject": ("Patient", "Group"),
                "partOf": ("CarePlan",),
                "careTeam": ("CareTeam",),
                "goal": ("Goal",),
                "author": PARTY,
            },
            doc="Parent plan (tag `plan`) and one child per section (partOf the parent).",
        ),
        ResourceType(
            "Goal",
            params=(
                _tok("identifier", "identifier"),
                _ref("patient", "subject", targets=PATIENT_LIKE),
                _ref("subject", "subject", targets=("Patient", "Group", "Organization")),
                _tok("lifecycle-status", "lifecycleStatus"),
                _tok("category", "category"),
                _date("start-date", "startDate"),
            ),
            compartment=("subject",),
            reference_targets={"subject": ("Patient", "Group", "Organization")},
        ),
        ResourceType(
            "RiskAssessment",
            params=(
                _tok("identifier", "identifier"),
                _ref("patient", "subject", targets=PATIENT_LIKE),
                _ref("subject", "subject", targets=("Patient", "Group")),
                _tok("status", "status"),
                _tok("code", "code"),
                _date("date", "occurrenceDateTime"),
            ),
            compartment=("subject",),
            reference_targets={"subject": ("Patient", "Group")},
        ),
        ResourceType(
            "Consent",
            params=(
                _tok("identifier", "identifier"),
                _ref("patient", "patient", targets=PATIENT_LIKE),
                _tok("status", "status"),
                _tok("scope", "scope"),
                _tok("category", "category"),
                _date("date", "dateTime"),
                _ref("actor", "provision.actor.reference", targets=PARTY),
                _tok("purpose", "provision.purpose"),
                _date("period", "provision.period"),
            ),
            compartment=("patient",),
            reference_targets={"patient": PATIENT_LIKE},
            doc="patient-privacy Consents decide every disclosure (CONTRACTS.md section 4).",
        ),
        ResourceType(
            "Task",
            params=(
                _tok("identifier", "identifier"),
                _ref("patient", "for", targets=PATIENT_LIKE),
                _ref("subject", "for", targets=("Patient", "Group", "Organization")),
                _tok("status", "status"),
                _tok("intent", "intent"),
                _tok("code", "code"),
                _tok("business-status", "businessStatus"),
                _ref("owner", "owner", targets=PARTY),
                _ref("requester", "requester", targets=PARTY),
                _ref("focus", "focus", targets=("CarePlan", "Task", "Communication", "Patient")),
                _ref("part-of", "partOf", targets=("Task",)),
                _date("period", "executionPeriod"),
                _date("authored-on", "authoredOn"),
                _date("modified", "lastModified"),
            ),
            compartment=("for",),
            reference_targets={"partOf": ("Task",), "owner": PARTY, "requester": PARTY},
            doc="Transfers between services: a parent Task and one child per week.",
        ),
        ResourceType(
            "Communication",
            params=(
                _tok("identifier", "identifier"),
                _ref("patient", "subject", targets=PATIENT_LIKE),
                _ref("subject", "subject", targets=("Patient", "Group")),
                _tok("status", "status"),
                _tok("category", "category"),
                _ref("recipient", "recipient", targets=PARTY),
                _ref("sender", "sender", targets=PARTY),
                _ref("about", "about", targets=("Task", "CarePlan", "Consent", "AuditEvent")),
                _date("sent", "sent"),
            ),
            compartment=("subject",),
            reference_targets={"subject": ("Patient", "Group")},
        ),
        ResourceType(
            "Provenance",
            params=(
                _ref("target", "target", targets=()),
                _ref("patient", "target", targets=PATIENT_LIKE),
                _date("recorded", "recorded"),
                _ref("agent", "agent.who", targets=PARTY),
            ),
            # Provenance joins the compartment of the patient its targets belong to.
            compartment=("target",),
        ),
        ResourceType(
            "AuditEvent",
            params=(
                _tok("type", "type"),
                _tok("subtype", "subtype"),
                _tok("action", "action"),
                _date("date", "recorded"),
                _ref("entity", "entity.what", targets=()),
                _ref("patient", "entity.what", targets=PATIENT_LIKE),
                _ref("agent", "agent.who", targets=PARTY),
                _tok("purpose", "purposeOfEvent"),
            ),
            compartment=("entity.what",),
            interactions=("read", "vread", "history-instance", "history-type", "search-type"),
        ),
        ResourceType(
            "Subscription",
            params=(
                _tok("status", "status"),
                SearchParam("criteria", "string", ("criteria",)),
                SearchParam("url", "uri", ("channel.endpoint",)),
                _tok("type", "channel.type"),
            ),
        ),
        # The published care-plan model (mappings/published_model.py), served read-only by
        # server/model_routes.py: not personal data, never stored.
        _published(
            "StructureDefinition",
            "Profiles of the care-plan model (CarePlan, Goal, CareTeam, Consent, Task, ...).",
            _tok("type", "type"),
            SearchParam("base", "uri", ("baseDefinition",)),
        ),
        _published("CodeSystem", "The care-plan section and activity codes."),
        _published("ValueSet", "The care-plan section and activity codes, as bound by the profiles."),
    )
}

# Published conformance resources: served read-only, so no client may write them.
READ_ONLY_TYPES = frozenset({"StructureDefinition", "CodeSystem", "ValueSet"})

# Types a client may not POST/PUT as resources of their own (they are responses).
NON_RESOURCE_TYPES = ("CapabilityStatement", "OperationOutcome", "Bundle", "Parameters")

# Result parameters: accepted everywhere, never indexed.
RESULT_PARAMS = frozenset(
    {
        "_count",
        "_sort",
        "_include",
        "_revinclude",
        "_summary",
        "_elements",
        "_total",
        "_format",
        "_pretty",
        "_cursor",
    }
)

FHIR_VERSION = "4.0.1"
SERVER_NAME = "carebridge"
CAPABILITY_URL = f"{CANONICAL_BASE}/CapabilityStatement/carebridge"


def resource_type(name: str) -> ResourceType | None:
    return RESOURCE_TYPES.get(name)
