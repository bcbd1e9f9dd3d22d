"""Reading a partner's FHIR server (the ICR, a GP system): searches with paging.

Only what the pull needs: a patient by NHS number, then their CarePlans, CareTeams and
Tasks. Bundles are followed page by page through `link[next]`, on the partner's own
host only; redirects are not followed.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode, urlparse

import requests
from requests.adapters import HTTPAdapter

from carebridge.mappings.vocabulary import NHS_NUMBER_SYSTEM

FHIR_JSON = "application/fhir+json"
MAX_PAGES = 1000


class PullError(RuntimeError):
    """The partner could not be read; the message says what happened."""


class PartnerReader:
    def __init__(
        self, base: str, token: str | None = None, *, timeout: tuple[float, float] = (3.0, 30.0)
    ) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.mount("http://", HTTPAdapter(max_retries=0))
        self.session.mount("https://", HTTPAdapter(max_retries=0))
        self.session.headers["Accept"] = FHIR_JSON
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.session.close()

    def _get(self, url: str) -> dict:
        try:
            r = self.session.get(url, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise PullError(f"GET {url} failed: {exc}") from None
        if r.status_code != 200:
            raise PullError(f"GET {url} answered {r.status_code}")
        try:
            data = r.json()
        except ValueError:
            raise PullError(f"GET {url} did not answer with JSON") from None
        if not isinstance(data, dict):
            raise PullError(f"GET {url} did not answer with a FHIR resource")
        return data

    def search(self, rtype: str, params: list[tuple[str, str]]) -> Iterator[tuple[dict, str]]:
        """(resource, its full URL) for every match, across all pages."""
        url: str | None = f"{self.base}/{rtype}?{urlencode(params)}"
        host = urlparse(self.base).netloc
        pages = 0
        while url:
            bundle = self._get(url)
            if bundle.get("resourceType") != "Bundle":
                raise PullError(f"{rtype} search answered a {bundle.get('resourceType')}, not a Bundle")
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource")
                mode = (entry.get("search") or {}).get("mode", "match")
                if isinstance(resource, dict) and resource.get("resourceType") == rtype and mode == "match":
                    full = entry.get("fullUrl") or f"{self.base}/{rtype}/{resource.get('id')}"
                    yield resource, full
            url = next(
                (link.get("url") for link in bundle.get("link") or [] if link.get("relation") == "next"), None
            )
            pages += 1
            if url and (urlparse(url).netloc != host or pages >= MAX_PAGES):
                raise PullError(f"{rtype} search paging went to {url}: not followed")

    def patient_by_nhs_number(self, nhs_number: str) -> tuple[dict, str] | None:
        found = list(self.search("Patient", [("identifier", f"{NHS_NUMBER_SYSTEM}|{nhs_number}")]))
        if len(found) > 1:
            raise PullError(f"the partner holds {len(found)} patients with NHS number {nhs_number}")
        return found[0] if found else None

    def records_of(self, patient_id: str) -> Iterator[tuple[dict, str]]:
        for rtype in ("CareTeam", "CarePlan", "Task"):
            yield from self.search(rtype, [("patient", f"Patient/{patient_id}"), ("_count", "100")])
