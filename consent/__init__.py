"""carebridge.consent: the pure consent engine (CONTRACTS.md section 4).

No I/O, no web framework, no database: the server gathers the facts
(:class:`Requester`, :class:`PatientFacts`) and asks :func:`decide`.

* :func:`decide` - rules 1-6, the one enforcement function.
* :func:`redact`, :func:`references` - rule 7.
* :func:`check_consent` - can the engine apply a Consent exactly? (refuse it if not)
* :func:`explain` - a Decision in plain English.
* :func:`choices_to_consent`, :func:`consent_to_choices` - a person's sharing choices.
"""

from carebridge.consent.choices import (
    choice_problems,
    choices_to_consent,
    consent_to_choices,
    validate_choices,
)
from carebridge.consent.decide import decide
from carebridge.consent.explain import explain
from carebridge.consent.model import Decision, PatientFacts, Requester
from carebridge.consent.policy import clear_policy_cache, compile_policy, policy_for
from carebridge.consent.redact import redact, references
from carebridge.consent.validate import check_consent

__all__ = [
    "Decision",
    "PatientFacts",
    "Requester",
    "check_consent",
    "choice_problems",
    "choices_to_consent",
    "clear_policy_cache",
    "compile_policy",
    "consent_to_choices",
    "decide",
    "explain",
    "policy_for",
    "redact",
    "references",
    "validate_choices",
]
