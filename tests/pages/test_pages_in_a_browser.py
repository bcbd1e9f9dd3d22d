""" "My care plan, my choices" in a real headless Chromium, with page scripts switched off
(every action must work without JavaScript), against a real demo server.

Millie signs in with her own link, reads who can see what (checked cell by cell against
$evaluate), says yes and then no to Bath Mind seeing her crisis plan, and Bath Mind,
through the FHIR API, finds it gone; her access log says who looked and that she
changed her choices. Then Sam Patel helps her (assisted mode), forms without a valid
CSRF token change nothing, another person's id is not found, and axe-core finds no
serious accessibility problem on any page, on a desktop, a phone and at 200% zoom.
Screenshots land in test-output/pages/.
"""

from __future__ import annotations

import re
from collections import defaultdict

import httpx
import orjson
import pytest

from carebridge.server import store
from carebridge.server.exchange_audit import recall_event
from tests.conftest import LiveServer

SECTION = "https://carebridge.example/fhir/CodeSystem/care-plan-section"
SAM = "Practitioner/sam-patel"


def home(site: LiveServer) -> str:
    return site.base.removesuffix("/fhir")


@pytest.fixture(scope="module")
def page(browser):
    p = browser.new_page()
    # Page scripts off: every action below is a plain link or form.
    p.call("Emulation.setScriptExecutionDisabled", {"value": True})
    p.viewport(1280, 900)
    return p


def sign_in_as_millie(page, site: LiveServer) -> None:
    page.call("Network.clearBrowserCookies")
    page.goto(f"{home(site)}/my/?token={site.tokens['millie-app']}", settle_path="/my/millie/")


def sign_in_as_sam(page, site: LiveServer) -> None:
    page.call("Network.clearBrowserCookies")
    token = site.token("awp-bath-cmht", practitioner=SAM)
    page.goto(f"{home(site)}/my/?token={token}", settle_path="/my/")


def grid(page) -> dict[tuple[str, str], str]:
    cells = page.eval(
        "Array.from(document.querySelectorAll('td[data-answer]'))"
        ".map(td => [td.dataset.recipient, td.dataset.section, td.dataset.answer])"
    )
    return {(r, s): a for r, s, a in cells}


def choose(page, site: LiveServer, recipient: str, answers: dict[str, str]) -> None:
    """Open one recipient's form, set some answers, and go on to the confirmation."""
    page.goto(f"{home(site)}/my/millie/choices")
    page.click(f"a[href$='/choices/{recipient}']")
    for section, answer in answers.items():
        page.check(f"input[name='see-{section}'][value='{answer}']")
    page.click("form.form button[type=submit]")
    assert page.h1() == "Check your changes"


def test_millie_signs_in_with_her_link_and_the_token_leaves_the_address(page, site, shots):
    sign_in_as_millie(page, site)
    assert page.path == "/my/millie/"
    assert "token" not in page.url
    assert page.h1() == "Hello, Millie"
    assert page.eval("document.scripts.length") == 0
    cookies = {c["name"]: c for c in page.call("Network.getCookies")["cookies"]}
    session = cookies["cb_my"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/my/"
    page.screenshot(shots / "01-start.png")

    page.click("nav a[href$='/plan']")
    assert page.h1() == "Millie's care and support plan"
    text = page.text()
    assert "Walk Bella (the dog) by the river" in text  # her words, not codes
    assert "My crisis plan" in text and "Risks, talked about openly" in text
    page.screenshot(shots / "02-my-care-plan.png")

    # Reading the page disclosed her plan: audited like any read (rule 9).
    with site.db.read() as c:
        events = [
            orjson.loads(bytes(b))
            for (b,) in c.all("SELECT body FROM resource WHERE type = 'AuditEvent' AND patient = 'millie'")
        ]
    mine = [
        e
        for e in events
        if any(a["who"].get("identifier", {}).get("value") == "millie-app" for a in e["agent"])
    ]
    seen = {x["what"]["reference"].rsplit("/_history", 1)[0] for e in mine for x in e["entity"]}
    assert "CarePlan/millie-daily-activities" in seen and "Patient/millie" in seen


def test_who_can_see_what_is_exactly_what_evaluate_says(page, site, shots):
    sign_in_as_millie(page, site)
    page.goto(f"{home(site)}/my/millie/sharing")
    assert page.h1() == "Who can see what"
    cells = grid(page)
    page.screenshot(shots / "03-who-can-see-what.png")
    assert cells[("Organization/bath-mind", "daily-activities")] == "yes"
    assert cells[("Organization/bath-mind", "crisis-plan")] == "no"
    assert cells[("Organization/keynsham-gp", "transfer")] == "yes"
    assert cells[("Organization/banes-icr", "about-me")] == "no"

    # Every organisation's row, cell by cell, against $evaluate over Millie's whole record.
    with site.client("awp-bath-cmht") as custodian:
        everything = custodian.get("/Patient/millie/$everything").json()
        column = {}
        for entry in everything["entry"]:
            r = entry["resource"]
            tags = [t["code"] for t in r.get("meta", {}).get("tag", []) if t["system"] == SECTION]
            if r["resourceType"] != "AuditEvent":
                column[f"{r['resourceType']}/{r['id']}"] = (
                    "details" if r["resourceType"] == "Patient" else (tags[0] if tags else "other")
                )
        recipients = sorted({r for r, _ in cells if r.startswith("Organization/")})
        for who in recipients:
            answer = custodian.post(
                "/Consent/$evaluate",
                json={
                    "resourceType": "Parameters",
                    "parameter": [
                        {"name": "requester", "valueReference": {"reference": who}},
                        {"name": "patient", "valueReference": {"reference": "Patient/millie"}},
                    ],
                },
            )
            assert answer.status_code == 200, answer.text
            permits: dict[str, list[bool]] = defaultdict(list)
            for result in answer.json()["parameter"]:
                parts = {p["name"]: p for p in result["part"]}
                ref = parts["resource"]["valueReference"]["reference"]
                if ref in column:
                    permits[column[ref]].append(parts["decision"]["valueCode"] == "permit")
            for section, decisions in permits.items():
                expected = "yes" if all(decisions) else ("some" if any(decisions) else "no")
                assert cells[(who, section)] == expected, (who, section)


def test_saying_yes_then_no_to_bath_mind_is_what_the_api_enforces(page, site, shots):
    sign_in_as_millie(page, site)
    with site.client("bath-mind") as bath_mind:
        assert bath_mind.get("/CarePlan/millie-daily-activities").status_code == 200
        assert bath_mind.get("/CarePlan/millie-crisis-plan").status_code == 404

        # Yes first: her earlier consent said no to the crisis plan for the voluntary sector.
        choose(page, site, "Organization/bath-mind", {"crisis-plan": "yes"})
        assert "Bath Mind will be able to see your crisis plan." in page.text()
        page.click("form.form button[type=submit]", settle_path="/my/millie/sharing")
        assert "Your choices are saved" in page.text()
        assert grid(page)[("Organization/bath-mind", "crisis-plan")] == "yes"
        assert bath_mind.get("/CarePlan/millie-crisis-plan").status_code == 200

        # Then no: to the crisis plan and to her daily activities.
        choose(page, site, "Organization/bath-mind", {"crisis-plan": "no", "daily-activities": "no"})
        text = page.text()
        assert "Bath Mind will no longer see your daily activities and crisis plan." in text
        deletions = page.eval(
            "Array.from(document.querySelectorAll('.deletions li')).map(li => li.dataset.recipient)"
        )
        assert deletions == ["Organization/bath-mind"]
        assert "Citizens Advice" not in page.text(".changes")  # nobody else changes
        page.screenshot(shots / "04-check-your-changes.png")
        page.click("form.form button[type=submit]", settle_path="/my/millie/sharing")
        after = grid(page)
        assert after[("Organization/bath-mind", "crisis-plan")] == "no"
        assert after[("Organization/bath-mind", "daily-activities")] == "no"
        assert after[("Organization/citizens-advice-banes", "daily-activities")] == "yes"
        page.screenshot(shots / "05-saved.png")

        # The FHIR API, as Bath Mind: both sections are gone, nothing else is.
        assert bath_mind.get("/CarePlan/millie-crisis-plan").status_code == 404
        assert bath_mind.get("/CarePlan/millie-daily-activities").status_code == 404
        assert bath_mind.get("/CarePlan/millie-about-me").status_code == 200
        found = bath_mind.get("/CarePlan", params={"patient": "millie"}).json()
        ids = {e["resource"]["id"] for e in found.get("entry", [])}
        assert "millie-crisis-plan" not in ids and "millie-daily-activities" not in ids
    with site.client("citizens-advice-banes") as advice:
        assert advice.get("/CarePlan/millie-daily-activities").status_code == 200

    # The choices were saved by the API's own code: one active sharing-choices Consent.
    with site.client("awp-bath-cmht") as custodian:
        choices = custodian.get("/Patient/millie/$sharing-choices").json()
    assert choices["recordedBy"] == "Patient/millie"
    assert "present" not in choices

    page.click("nav a[href$='/log']")
    log = page.text()
    assert re.search(r"Bath Mind looked at your [^.]*daily activities[^.]* on \d+ \w+ at \d\d:\d\d\.", log)
    assert re.search(r"Bath Mind looked at your crisis plan on", log)
    assert log.count("You changed who can see your record on") == 2
    page.screenshot(shots / "06-who-has-looked.png")


def test_break_glass_and_recalls_are_in_the_log_in_words(page, site, shots):
    reason = "Found unwell at home; A&E needs her crisis plan"
    with site.client("keynsham-gp", **{"X-Purpose-Of-Use": "ETREAT", "X-Break-Glass-Reason": reason}) as gp:
        assert gp.get("/CarePlan/millie-crisis-plan").status_code == 200
    # What the exchange worker writes when it asks a partner to delete a copy.
    event = recall_event(
        "bath-mind",
        None,
        "millie",
        "CarePlan/millie-daily-activities/_history/1",
        "the person's sharing choices no longer allow this partner to see it",
        "recall",
    )
    with site.db.write() as c:
        store.append(c, [event])
    sign_in_as_millie(page, site)
    page.goto(f"{home(site)}/my/millie/log")
    log = page.text()
    assert "In an emergency, Keynsham Health Centre opened your crisis plan on" in log
    assert f"The reason they gave: \u201c{reason}\u201d. Your care team was told." in log
    assert "Bath Mind was asked to delete its copy of your daily activities on" in log
    assert "This is because you changed your sharing choices." in log
    page.screenshot(shots / "07-log-break-glass-and-recall.png")


def test_assisted_mode_says_who_is_helping_and_records_them(page, site, shots):
    sign_in_as_sam(page, site)
    assert page.path == "/my/"
    assert page.h1() == "Who are you with today?"
    listed = page.text()
    assert "Millie Harris" in listed and "Ava" in listed and "Zoe" in listed
    assert "Richard" not in listed  # not on Sam's caseload
    page.screenshot(shots / "08-assisted-caseload.png")

    page.click("a[href='/my/millie/']")
    banner = page.text(".assisted")
    assert "You are making these choices with Sam Patel, your care coordinator." in banner
    page.screenshot(shots / "09-assisted-start.png")

    page.goto(f"{home(site)}/my/richard/")
    assert page.h1() == "We cannot find that page"

    choose(page, site, "Organization/keynsham-gp", {"daily-activities": "yes"})
    assert "Keynsham Health Centre will be able to see your daily activities." in page.text()
    page.screenshot(shots / "10-assisted-confirm.png")
    # Without saying Millie is there: the server refuses (so would the browser's own check).
    page.eval("document.querySelector('form.form').noValidate = true")
    page.click("form.form button[type=submit]")
    assert page.h1() == "Check your changes"
    assert "Tick the box to say that Millie Harris is here and agrees." in page.text()
    page.check("#together")
    page.click("form.form button[type=submit]", settle_path="/my/millie/sharing")
    assert grid(page)[("Organization/keynsham-gp", "daily-activities")] == "yes"

    with site.client("awp-bath-cmht") as custodian:
        choices = custodian.get("/Patient/millie/$sharing-choices").json()
    assert choices["recordedBy"] == SAM
    assert choices["present"] == [SAM]
    with site.client("keynsham-gp") as gp:
        assert gp.get("/CarePlan/millie-daily-activities").status_code == 200

    page.click("nav a[href$='/log']")
    assert "You changed who can see your record, with Sam Patel, on" in page.text()


def test_dates_and_mistakes_in_the_form(page, site, shots):
    sign_in_as_millie(page, site)
    page.goto(f"{home(site)}/my/millie/choices/Organization/recovery-college")
    for part, value in (("day", "31"), ("month", "2"), ("year", "2031")):
        page.fill(f"input[name='until-{part}']", value)
    page.click("form.form button[type=submit]")
    assert page.h1() == "What can B&NES Recovery College see?"
    assert "There is a problem" in page.text(".error-summary")
    assert "not a real date" in page.text(".error-summary")
    page.screenshot(shots / "14-form-mistake.png")

    page.fill("input[name='until-day']", "1")
    page.fill("input[name='until-month']", "6")
    page.click("form.form button[type=submit]")
    assert page.h1() == "Check your changes"
    assert "B&NES Recovery College can see what you share until 1 June 2031." in page.text()
    page.click("form.form button[type=submit]", settle_path="/my/millie/sharing")
    with site.client("awp-bath-cmht") as custodian:
        choices = custodian.get("/Patient/millie/$sharing-choices").json()
    college = [s for s in choices["shares"] if s["recipient"] == "Organization/recovery-college"]
    assert college and all(s["until"] == "2031-06-01" for s in college if s["allow"])
    # The form shows the date it now has.
    page.goto(f"{home(site)}/my/millie/choices/Organization/recovery-college")
    assert page.eval("document.querySelector(\"input[name='until-year']\").value") == "2031"


def test_only_the_person_or_their_coordinator_by_name_can_sign_in(page, site, shots):
    page.call("Network.clearBrowserCookies")
    page.goto(f"{home(site)}/my/?token={site.token('awp-bath-cmht')}")
    assert page.h1() == "We could not do that"
    assert "sign in with a link made for you by name" in page.text()
    page.goto(f"{home(site)}/my/?token={site.tokens['bath-mind']}")
    assert "Partner systems use the FHIR API instead." in page.text()
    page.goto(f"{home(site)}/my/?token=not-a-token")
    assert page.h1() == "Sign in"
    assert "not right, or it has expired" in page.text()
    page.screenshot(shots / "11-sign-in.png")

    # The sign-in form takes the same code, then forgets it.
    page.fill("#code", site.tokens["millie-app"])
    page.click("form.form button[type=submit]", settle_path="/my/millie/")
    assert page.h1() == "Hello, Millie"


def test_forms_without_a_valid_csrf_token_change_nothing(page, site, shots):
    with httpx.Client(base_url=home(site)) as web:
        web.get("/my/", params={"token": site.tokens["millie-app"]})
        form = web.get("/my/millie/choices/Organization/citizens-advice-banes").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        stop = {"kind": "stop", "v": "0"}
        for bad in ({}, {"csrf": "x" * len(csrf)}, {"csrf": csrf + "a"}):
            answer = web.post("/my/millie/save", data={**stop, **bad})
            assert answer.status_code == 403
            assert "Nothing was changed." in answer.text
        # A good token from another site's page is refused too.
        answer = web.post(
            "/my/millie/save", data={**stop, "csrf": csrf}, headers={"Origin": "http://evil.test"}
        )
        assert answer.status_code == 403
        # Another session's token is not this session's.
        with httpx.Client(base_url=home(site)) as other:
            other.get("/my/", params={"token": site.tokens["millie-app"]})
            assert other.post("/my/millie/save", data={**stop, "csrf": csrf}).status_code == 403
        # And no session at all: sign in first.
        with httpx.Client(base_url=home(site)) as nobody:
            assert nobody.post("/my/millie/save", data={**stop, "csrf": csrf}).status_code == 401
    with site.client("citizens-advice-banes") as advice:
        assert advice.get("/CarePlan/millie-about-me").status_code == 200  # nothing stopped

    # In the browser: a tampered token on a real form.
    sign_in_as_millie(page, site)
    page.goto(f"{home(site)}/my/millie/stop")
    page.fill("form.form input[name=csrf]", "tampered")
    page.click("form.form button[type=submit]")
    assert page.h1() == "We could not do that"
    page.screenshot(shots / "12-csrf-refused.png")
    with site.client("citizens-advice-banes") as advice:
        assert advice.get("/CarePlan/millie-about-me").status_code == 200


def test_another_persons_id_in_the_address_is_not_found(page, site, shots):
    with httpx.Client(base_url=home(site)) as web:
        web.get("/my/", params={"token": site.tokens["millie-app"]})
        csrf = re.search(r'name="csrf" value="([^"]+)"', web.get("/my/millie/").text).group(1)
        missing = web.get("/my/nobody-at-all/plan")
        assert missing.status_code == 404
        for path in (
            "/my/richard/",
            "/my/richard/plan",
            "/my/richard/sharing",
            "/my/richard/choices",
            "/my/richard/choices/Organization/bath-mind",
            "/my/richard/log",
            "/my/millie/choices/Organization/awp-bath-cmht",  # not someone she chooses for
        ):
            answer = web.get(path)
            assert answer.status_code == 404, path
            assert "Richard" not in answer.text
            assert answer.headers["content-type"].startswith("text/html")
        assert web.post("/my/richard/save", data={"kind": "stop", "csrf": csrf, "v": "0"}).status_code == 404
        assert web.get("/my/millie/plan").status_code == 200
        for wrong in (web.put("/my/millie/plan"), web.get("/my/millie/save")):
            assert wrong.status_code == 405 and "That did not work" in wrong.text
    with httpx.Client(base_url=home(site)) as nobody:
        answer = nobody.get("/my/millie/plan")
        assert answer.status_code == 401 and "Sign in" in answer.text
        nobody.cookies.set("cb_my", "e30.bm90LWEtbWFj", path="/my/")
        assert nobody.get("/my/millie/plan").status_code == 401  # a forged session
    sign_in_as_millie(page, site)
    page.goto(f"{home(site)}/my/richard/plan")
    assert page.h1() == "We cannot find that page"
    page.screenshot(shots / "13-not-found.png")


PAGES = (
    ("start", "/my/millie/"),
    ("plan", "/my/millie/plan"),
    ("sharing", "/my/millie/sharing"),
    ("choices", "/my/millie/choices"),
    ("choose", "/my/millie/choices/Organization/bath-mind"),
    ("crisis", "/my/millie/crisis"),
    ("stop", "/my/millie/stop"),
    ("log", "/my/millie/log"),
    ("not-found", "/my/millie/nothing-here"),
)


def test_axe_finds_no_serious_problem_on_a_desktop_a_phone_or_at_200_percent(
    browser, site, shots, axe_source
):
    tab = browser.new_page(bypass_csp=True)  # only so that axe-core can be injected
    tab.call("Network.clearBrowserCookies")
    tab.viewport(1280, 900)
    tab.goto(f"{home(site)}/my/sign-in")
    problems = {}
    found = tab.axe(axe_source)
    problems["sign-in"] = [v for v in found if v["impact"] in ("serious", "critical")]
    tab.goto(f"{home(site)}/my/?token={site.tokens['millie-app']}", settle_path="/my/millie/")
    for name, path in PAGES:
        tab.goto(f"{home(site)}{path}")
        found = tab.axe(axe_source)
        problems[name] = [v for v in found if v["impact"] in ("serious", "critical")]
    assert not any(problems.values()), problems

    # A phone, and a desktop at 200% zoom: nothing but the table scrolls sideways.
    for label, (width, height, scale, mobile) in {
        "phone": (375, 812, 2, True),
        "zoom-200": (640, 450, 2, False),
    }.items():
        tab.viewport(width, height, scale, mobile)
        for name, path in PAGES:
            tab.goto(f"{home(site)}{path}")
            assert not tab.overflows(), (label, name)
            if name in ("start", "sharing", "choose", "log"):
                tab.screenshot(shots / f"20-{label}-{name}.png", full=False)
        tab.goto(f"{home(site)}/my/millie/sharing")
        assert not [v for v in tab.axe(axe_source) if v["impact"] in ("serious", "critical")], label
    tab.viewport(1280, 900)
    for name, path in PAGES:
        tab.goto(f"{home(site)}{path}")
        tab.screenshot(shots / f"30-desktop-{name}.png")
    # Looking changed nothing: Bath Mind still sees what it saw.
    with site.client("bath-mind") as bath_mind:
        assert bath_mind.get("/CarePlan/millie-about-me").status_code == 200


def test_the_pages_need_no_script_and_break_no_content_policy(page):
    assert not [line for line in page.logs() if "Content Security Policy" in line]
