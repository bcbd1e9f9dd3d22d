"""The person's pages over plain HTTP (no browser), on SQLite and on PostgreSQL: what a
form offers, posted as a browser would, changes what the FHIR API discloses at once,
and what the pages say matches it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from html_forms import main_form

from tests.conftest import LiveServer, own_server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with own_server(request.param, tmp_path_factory) as live:
        yield live


@contextmanager
def web(world: LiveServer, token: str) -> Iterator[httpx.Client]:
    """A browser-like client, signed in with the person's link."""
    with httpx.Client(base_url=world.base.removesuffix("/fhir"), follow_redirects=True, timeout=30) as client:
        signed_in = client.get("/my/", params={"token": token})
        assert signed_in.status_code == 200
        assert 'http-equiv="refresh"' in signed_in.text and "cb_my" in client.cookies
        yield client


def submit(client: httpx.Client, page: httpx.Response, **answers: str) -> httpx.Response:
    action, fields, _ = main_form(page.text)
    return client.post(action, data={**fields, **answers})


def test_a_change_made_on_the_page_is_enforced_by_the_api_at_once(world):
    with web(world, world.tokens["millie-app"]) as client, world.client("citizens-advice-banes") as advice:
        assert advice.get("/CarePlan/millie-education-training").status_code == 200
        form = client.get("/my/millie/choices/Organization/citizens-advice-banes")
        assert form.status_code == 200
        _, fields, radios = main_form(form.text)
        assert fields["see-education-training"] == "yes" and fields["see-crisis-plan"] == "no"
        assert radios["see-about-me"] == ["yes", "no"]

        confirm = submit(client, form, **{"see-education-training": "no"})
        assert confirm.status_code == 200
        assert (
            "Citizens Advice Bath &amp; North East Somerset will no longer see your education and training."
            in confirm.text
        )
        assert advice.get("/CarePlan/millie-education-training").status_code == 200  # nothing saved yet

        saved = submit(client, confirm)
        assert saved.status_code == 200 and str(saved.url).endswith("/my/millie/sharing?saved=1")
        cell = re.search(
            r'data-recipient="Organization/citizens-advice-banes" data-section="education-training" '
            r'data-answer="(\w+)"',
            saved.text,
        )
        assert cell and cell.group(1) == "no"
        assert advice.get("/CarePlan/millie-education-training").status_code == 404
        assert advice.get("/CarePlan/millie-about-me").status_code == 200


def test_an_advance_decision_made_on_the_page_stops_break_glass(world):
    emergency = {"X-Purpose-Of-Use": "ETREAT", "X-Break-Glass-Reason": "collapsed in town"}
    with world.client("keynsham-gp", **emergency) as gp:
        assert gp.get("/CarePlan/millie-crisis-plan").status_code == 200
    with web(world, world.tokens["millie-app"]) as client:
        form = client.get("/my/millie/crisis")
        _, fields, _ = main_form(form.text)
        assert fields["crisis:Organization/banes-icr"] == "no"  # her advance decision, read back
        assert fields["crisis:Organization/keynsham-gp"] == "unset"
        confirm = submit(client, form, **{"crisis:Organization/keynsham-gp": "no"})
        assert "If you are unwell and cannot decide: No. You decided this in advance." in confirm.text
        submit(client, confirm)
    with world.client("keynsham-gp", **emergency) as gp:
        assert gp.get("/CarePlan/millie-crisis-plan").status_code == 404


def test_stop_sharing_everything_now(world):
    partners = ("bath-mind", "recovery-college", "awp-banes-pcls")
    for partner in partners:
        with world.client(partner) as them:
            assert them.get("/CarePlan/millie-about-me").status_code == 200
    with web(world, world.tokens["millie-app"]) as client:
        confirm = client.get("/my/millie/stop")
        assert confirm.status_code == 200
        asked = set(re.findall(r'<li data-recipient="Organization/([\w-]+)"', confirm.text))
        assert {"bath-mind", "recovery-college", "awp-banes-pcls", "keynsham-gp"} <= asked
        done = submit(client, confirm)
        assert done.status_code == 200
        answers = set(re.findall(r'data-answer="(\w+)"', done.text))
        assert answers == {"no"}
        log = client.get("/my/millie/log").text
        assert "You changed who can see your record on" in log
    for partner in partners:
        with world.client(partner) as them:
            assert them.get("/CarePlan/millie-about-me").status_code == 404
    with world.client("awp-bath-cmht") as custodian:
        assert custodian.get("/CarePlan/millie-about-me").status_code == 200
        choices = custodian.get("/Patient/millie/$sharing-choices").json()
    assert choices["shares"] == []
    refusals = [c["recipient"] for c in choices["crisis"] if not c["allow"]]
    assert refusals == ["Organization/keynsham-gp", "Organization/banes-icr"]


def test_a_stale_confirmation_is_checked_again_not_saved(world):
    with web(world, world.tokens["millie-app"]) as one, web(world, world.tokens["millie-app"]) as two:
        form = one.get("/my/millie/choices/Organization/bath-mind")
        confirm_one = submit(one, form, **{"see-about-me": "yes"})
        form_two = two.get("/my/millie/choices/Organization/bath-mind")
        confirm_two = submit(two, form_two, **{"see-faith-spirituality": "yes"})
        assert submit(two, confirm_two).status_code == 200  # saved first
        stale = submit(one, confirm_one)
        assert stale.status_code == 409
        assert "Something changed while you were deciding" in stale.text
    with world.client("bath-mind") as bath_mind:
        assert bath_mind.get("/CarePlan/millie-faith-spirituality").status_code == 200
        assert bath_mind.get("/CarePlan/millie-about-me").status_code == 404


def test_signing_out_ends_the_session(world):
    with web(world, world.tokens["millie-app"]) as client:
        start = client.get("/my/millie/")
        assert start.status_code == 200
        action, fields, _ = main_form(start.text, "signed-in-form")
        assert action == "/my/sign-out"
        out = client.post(action, data=fields)
        assert out.status_code == 200 and "You have signed out." in out.text
        assert "cb_my" not in client.cookies
        assert client.get("/my/millie/").status_code == 401
