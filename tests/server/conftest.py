"""Fixtures for the FHIR server tests (issue 3): the demo world's people and partners.

Every test here talks to a real carebridge over a real socket (`live`, one per backend,
shared by the session). Tests that write make fresh resources (fresh patients with
fresh ids and NHS numbers) and never change the demo world that other tests read.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import LiveServer
from tests.server.fhir_checks import (
    BATH_MIND,
    CUSTODIAN,
    GP,
    ICR,
    MILLIE_APP,
    NHS_SYSTEM,
    SERVICE_B,
    TRUST,
    new_patient,
)


# -- the people of the case studies ---------------------------------------------------------
@dataclass(frozen=True)
class Person:
    """One of the seed case-study people, as the demo world holds them."""

    id: str
    given: str
    family: str
    nhs_number: str
    birth_date: str

    @property
    def ref(self) -> str:
        return f"Patient/{self.id}"

    @property
    def plan(self) -> str:
        return f"{self.id}-plan"


def _person(live: LiveServer, pid: str) -> Person:
    patient = live.world.get(f"Patient/{pid}")  # type: ignore[union-attr]
    nhs = next(i["value"] for i in patient["identifier"] if i["system"] == NHS_SYSTEM)
    name = patient["name"][0]
    return Person(pid, name["given"][0], name["family"], nhs, patient["birthDate"])


@pytest.fixture
def millie(live: LiveServer) -> Person:
    return _person(live, "millie")


@pytest.fixture
def richard(live: LiveServer) -> Person:
    return _person(live, "richard")


@pytest.fixture
def jenny(live: LiveServer) -> Person:
    return _person(live, "jenny")


@pytest.fixture
def george(live: LiveServer) -> Person:
    return _person(live, "george")


@pytest.fixture
def zoe(live: LiveServer) -> Person:
    return _person(live, "zoe")


# -- partners, each a client with its own bearer token ---------------------------------------
@pytest.fixture
def custodian(live: LiveServer) -> Iterator[httpx.Client]:
    """Bath CMHT: the trust team that holds every demo patient's record."""
    with live.client(CUSTODIAN) as c:
        yield c


@pytest.fixture
def trust(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client(TRUST) as c:
        yield c


@pytest.fixture
def service_b(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client(SERVICE_B) as c:
        yield c


@pytest.fixture
def gp(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client(GP) as c:
        yield c


@pytest.fixture
def bath_mind(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client(BATH_MIND) as c:
        yield c


@pytest.fixture
def icr(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client(ICR) as c:
        yield c


@pytest.fixture
def millie_app(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client(MILLIE_APP) as c:
        yield c


@pytest.fixture
def anonymous(live: LiveServer) -> Iterator[httpx.Client]:
    with live.client() as c:
        yield c


@pytest.fixture
def fresh_patient(custodian: httpx.Client) -> str:
    """A new patient held by Bath CMHT, with no consents: returns "Patient/ID"."""
    r = custodian.post("/Patient", json=new_patient())
    assert r.status_code == 201, r.text
    return f"Patient/{r.json()['id']}"
