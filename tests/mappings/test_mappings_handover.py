"""The gradual transfer of care, as the people in seeds/000_... section 3 described it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fhir.resources.R4B import get_fhir_model_class

from carebridge.mappings.handover import (
    Service,
    build_transfer_resources,
    describe_section,
    frequency_in_words,
    gradual_introduction_week,
    handover_care_team,
    plan_from_tasks,
    plan_weeks,
    prefixed_ids,
    resume_plan,
    task_inputs,
    weekly_owners,
)
from carebridge.mappings.vocabulary import SECTION_SYSTEM, SNOMED

# The seed's table, week by week: who makes contact (A = existing, B = new service).
SEED_TABLE = {1: "A", 2: "A", 3: "A", 4: "A", 5: "A", 6: "B", 7: "A", 8: "B"}

START = date(2024, 6, 3)  # a Monday
SAM = Service(
    organization="Organization/service-a",
    name="Service A",
    worker="Practitioner/sam",
    worker_name="Sam",
    worker_display="Sam Patel",
)
PARDEEP = Service(
    organization="Organization/service-b",
    name="Service B",
    worker="Practitioner/pardeep",
    worker_name="Pardeep",
    worker_display="Pardeep Sandhu",
)


def _build(**overrides: object):
    args: dict = dict(
        patient="Patient/millie",
        care_plan="CarePlan/millie-plan",
        service_a=SAM,
        service_b=PARDEEP,
        start=START,
        id_for=prefixed_ids("t1"),
    )
    args.update(overrides)
    return build_transfer_resources(**args)


# ------------------------------------------------------------------------ the schedule


def test_gradual_handover_matches_the_seed_table() -> None:
    owners = weekly_owners(8)
    assert {n: o for n, o in enumerate(owners, start=1)} == SEED_TABLE
    assert weekly_owners() == owners  # eight weeks is the default
    assert gradual_introduction_week(8) == 4


def test_week_four_agrees_the_plan_and_introduces_the_new_key_worker() -> None:
    weeks = plan_weeks(START, 8, "gradual", None, a_worker="Sam", b_worker="Pardeep")
    assert [w.introduction for w in weeks] == [n == 4 for n in range(1, 9)]
    assert weeks[3].description == (
        "Week 4: Sam from Service A will contact you once a week, agree with you the plan"
        " for moving to Service B, and introduce Pardeep, your new key worker."
    )


def test_every_week_says_in_plain_words_who_will_contact_the_person() -> None:
    weeks = plan_weeks(START, 8, "gradual", None, a_worker="Sam", b_worker="Pardeep")
    for w in weeks:
        assert w.description.startswith(f"Week {w.week}: ")
        expected = "Sam from Service A" if w.owner == "A" else "Pardeep from Service B"
        assert expected in w.description
        assert "once a week" in w.description
    # Once they alternate, the person hears that both workers talk to each other...
    assert "keep each other up to date" in weeks[6].description
    # ...and the last week leaves the door open to "not ready yet".
    assert "not feel ready" in weeks[-1].description


def test_without_named_workers_the_words_still_make_sense() -> None:
    weeks = plan_weeks(START, 8, "gradual", None)
    assert weeks[0].description == (
        "Week 1: your care coordinator from Service A will contact you once a week,"
        " as agreed with you."
    )
    assert weeks[3].description.endswith("and introduce your new key worker.")
    assert weeks[5].description.startswith("Week 6: your new key worker from Service B")


def test_longer_handovers_keep_alternating() -> None:
    owners = weekly_owners(12)
    assert owners[:8] == weekly_owners(8)
    assert owners[8:] == ["A", "B", "A", "B"]  # weeks 9-12
    assert gradual_introduction_week(12) == 4


@pytest.mark.parametrize(
    ("weeks", "expected", "intro"),
    [
        # Our rule for fewer than 8 weeks: keep the seed's tail (introduction, then turns
        # ending with B) and drop the quiet lead-in weeks first.
        (7, "AAAABAB", 3),
        (6, "AAABAB", 2),
        (5, "AABAB", 1),
        # Below five weeks the introduction is week 1 and the rest alternate, ending on B.
        (4, "ABAB", 1),
        (3, "AAB", 1),
        (2, "AB", 1),
    ],
)
def test_shorter_handovers_keep_the_introduction_and_end_with_the_new_service(
    weeks: int, expected: str, intro: int
) -> None:
    assert "".join(weekly_owners(weeks)) == expected
    assert gradual_introduction_week(weeks) == intro
    plan = plan_weeks(START, weeks, "gradual", None)
    assert plan[-1].owner == "B"
    assert plan[intro - 1].owner == "A" and plan[intro - 1].introduction
    # The introduction always comes before B's first week.
    assert intro < expected.index("B") + 1


@pytest.mark.parametrize("weeks", [1, 0, -3])
def test_a_handover_shorter_than_two_weeks_is_refused(weeks: int) -> None:
    with pytest.raises(ValueError):
        weekly_owners(weeks)


def test_week_n_runs_from_start_plus_seven_n_minus_one_days_for_seven_days() -> None:
    for w in plan_weeks(START, 10, "gradual", None):
        assert w.start == START + timedelta(days=7 * (w.week - 1))
        assert w.end == w.start + timedelta(days=6)


def test_a_custom_pattern_is_followed_and_introduced_the_week_before_b_starts() -> None:
    weeks = plan_weeks(START, 4, "custom", ["a", "A", "B", "B"], b_worker="Pardeep")
    assert [w.owner for w in weeks] == ["A", "A", "B", "B"]
    assert [w.introduction for w in weeks] == [False, True, False, False]
    assert "introduce Pardeep" in weeks[1].description


@pytest.mark.parametrize(
    ("weeks", "pattern", "custom"),
    [
        (3, "custom", ["A", "B"]),  # the list must cover every week
        (2, "custom", ["A", "C"]),  # only A or B
        (2, "custom", ["A", "A"]),  # the new service must take part
        (2, "custom", None),
        (8, "gradual", ["A"] * 8),  # a list only goes with "custom"
        (8, "sudden", None),
    ],
)
def test_a_plan_nobody_could_follow_is_refused(
    weeks: int, pattern: str, custom: list[str] | None
) -> None:
    with pytest.raises(ValueError):
        plan_weeks(START, weeks, pattern, custom)


def test_frequency_reads_in_plain_words() -> None:
    assert frequency_in_words("weekly") == "once a week"
    assert frequency_in_words("fortnightly") == "once every two weeks"
    assert frequency_in_words("2 or 3 times a week") == "2 or 3 times a week"
    weeks = plan_weeks(START, 8, "gradual", None, frequency="fortnightly")
    assert all("once every two weeks" in w.description for w in weeks)


# ------------------------------------------------------------------------ the resources


def test_the_parent_task_is_the_whole_transfer() -> None:
    parent = _build(status="in-progress", frequency="weekly", authored_on=START).parent
    assert parent["resourceType"] == "Task" and parent["id"] == "t1"
    assert parent["intent"] == "plan" and parent["status"] == "in-progress"
    assert parent["code"]["text"] == "Transfer of care"
    assert {"system": SNOMED, "code": "308292007", "display": "Transfer of care"} in parent[
        "code"
    ]["coding"]
    assert parent["focus"] == {"reference": "CarePlan/millie-plan"}
    assert parent["for"] == {"reference": "Patient/millie"}
    assert parent["requester"] == {"reference": "Organization/service-a"}
    assert parent["owner"] == {"reference": "Organization/service-b"}
    assert parent["restriction"]["period"] == {"start": "2024-06-03", "end": "2024-07-28"}
    inputs = {i["type"]["coding"][0]["code"]: i for i in parent["input"]}
    assert inputs["frequency"]["valueString"] == "weekly"
    assert inputs["weeks"]["valueInteger"] == 8
    assert inputs["pattern"]["valueCode"] == "gradual"
    assert inputs["owners"]["valueString"] == "AAAAABAB"
    assert inputs["key-worker"]["valueReference"]["reference"] == "Practitioner/pardeep"
    assert "once a week" in parent["description"]
    assert parent["authoredOn"] == "2024-06-03"


def test_each_week_is_a_child_task_owned_by_the_service_that_makes_contact() -> None:
    result = _build()
    assert [t["id"] for t in result.weeks] == [f"t1-week-{n}" for n in range(1, 9)]
    owner_org = {"A": "Organization/service-a", "B": "Organization/service-b"}
    worker = {"A": "Practitioner/sam", "B": "Practitioner/pardeep"}
    for n, task in enumerate(result.weeks, start=1):
        side = SEED_TABLE[n]
        assert task["partOf"] == [{"reference": "Task/t1"}]
        assert task["intent"] == "plan" and task["status"] == "requested"
        assert task["owner"] == {"reference": owner_org[side]}
        assert task["performerType"][0]["coding"][0]["code"] == side
        assert task["input"][0]["valueReference"]["reference"] == worker[side]
        start = START + timedelta(days=7 * (n - 1))
        assert task["executionPeriod"] == {
            "start": start.isoformat(),
            "end": (start + timedelta(days=6)).isoformat(),
        }
        assert task["description"] == result.plan[n - 1].description


def test_weeks_that_have_ended_are_completed_and_the_parent_says_where_we_are() -> None:
    today = START + timedelta(days=22)  # day 2 of week 4
    result = _build(status="in-progress", today=today)
    assert [t["status"] for t in result.weeks] == ["completed"] * 3 + ["requested"] * 5
    assert result.parent["businessStatus"]["text"] == "Week 4 of 8: introduction week"
    activity = [a["detail"]["status"] for a in result.section["activity"]]
    assert activity == ["completed"] * 3 + ["in-progress"] + ["scheduled"] * 4


def test_the_transfer_section_tells_the_person_who_to_expect_each_week() -> None:
    section = _build().section
    assert section["resourceType"] == "CarePlan" and section["id"] == "t1-section"
    assert section["partOf"] == [{"reference": "CarePlan/millie-plan"}]
    assert section["subject"] == {"reference": "Patient/millie"}
    assert section["status"] == "active" and section["intent"] == "plan"
    assert section["title"] == "Moving between services"
    assert "weeks 1-5 Sam; week 6 Pardeep; week 7 Sam; week 8 Pardeep" in section[
        "description"
    ]
    details = [a["detail"] for a in section["activity"]]
    assert len(details) == 8
    assert details[5]["description"].startswith("Week 6: Pardeep from Service B")
    assert {"reference": "Organization/service-b"} in details[5]["performer"]


def test_every_transfer_resource_is_tagged_with_the_transfer_section() -> None:
    for resource in _build().resources():
        tags = [t for t in resource["meta"]["tag"] if t["system"] == SECTION_SYSTEM]
        assert [t["code"] for t in tags] == ["transfer"]


def test_a_paused_transfer_puts_the_section_on_hold() -> None:
    assert _build(status="on-hold").section["status"] == "on-hold"
    assert _build(status="completed").section["status"] == "completed"
    with pytest.raises(ValueError):
        _build(status="paused")  # not a Task status


def test_caller_supplied_ids_are_used_for_every_resource() -> None:
    result = _build(id_for=lambda kind, n: f"{kind}-{n}")
    assert [r["id"] for r in result.resources()] == (
        ["task-0"] + [f"week-{n}" for n in range(1, 9)] + ["section-0"]
    )
    assert result.weeks[0]["partOf"] == [{"reference": "Task/task-0"}]


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"weeks": 11, "status": "in-progress", "today": START + timedelta(days=40)},
        {"weeks": 3, "pattern": "custom", "custom": ["A", "B", "B"], "frequency": "fortnightly"},
        {"service_a": Service("Organization/a", "Service A"), "weeks": 2},
    ],
)
def test_transfer_resources_are_valid_fhir_r4(overrides: dict) -> None:
    for resource in _build(**overrides).resources():
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


# ------------------------------------------------------------------------ re-planning


def test_resuming_keeps_weeks_done_and_moves_the_rest_on_from_the_restart() -> None:
    plan = plan_weeks(START, 8, "gradual", None)
    restart = START + timedelta(days=40)
    moved = resume_plan(plan, {1, 2, 3}, restart)
    assert moved[:3] == plan[:3]
    assert [w.start for w in moved[3:]] == [restart + timedelta(days=7 * n) for n in range(5)]
    assert [(w.owner, w.description) for w in moved] == [(w.owner, w.description) for w in plan]


def test_a_stored_transfer_reads_back_as_the_plan_it_was_made_from() -> None:
    result = _build(weeks=6, pattern="custom", custom=list("AABABB"), frequency="fortnightly")
    assert plan_from_tasks(result.parent, result.weeks, SAM, PARDEEP) == result.plan
    # With a week's dates moved (after a pause), the plan follows its Task.
    moved = [dict(t) for t in result.weeks]
    moved[5]["executionPeriod"] = {"start": "2024-09-02", "end": "2024-09-08"}
    assert plan_from_tasks(result.parent, moved, SAM, PARDEEP)[5].start == date(2024, 9, 2)
    assert task_inputs(result.weeks[2])["week"] == 3
    with pytest.raises(ValueError):
        plan_from_tasks({"id": "made-by-hand", "input": []}, [], SAM, PARDEEP)


def test_the_section_can_be_rewritten_with_statuses_and_a_note_for_the_person() -> None:
    result = _build()
    paused = describe_section(
        result.section,
        result.plan,
        SAM,
        PARDEEP,
        "weekly",
        status="on-hold",
        week_statuses={1: "completed", 2: "on-hold"},
        note="Paused on Monday 10 June 2024.",
    )
    assert paused["status"] == "on-hold"
    assert paused["description"].endswith("Paused on Monday 10 June 2024.")
    assert [a["detail"]["status"] for a in paused["activity"]][:3] == ["completed", "on-hold", "scheduled"]
    get_fhir_model_class("CarePlan").model_validate(paused)


def test_both_services_and_their_named_workers_join_the_care_team_for_the_handover() -> None:
    team = {
        "resourceType": "CareTeam",
        "id": "t",
        "status": "active",
        "participant": [{"role": [{"text": "Mum"}], "member": {"reference": "RelatedPerson/mum"}}],
    }
    end = START + timedelta(days=55)
    joined = handover_care_team(team, SAM, PARDEEP, START, end)
    members = {p["member"]["reference"]: p.get("period") for p in joined["participant"]}
    assert members == {
        "RelatedPerson/mum": None,
        "Organization/service-a": {"start": "2024-06-03", "end": end.isoformat()},
        "Practitioner/sam": {"start": "2024-06-03", "end": end.isoformat()},
        "Organization/service-b": {"start": "2024-06-03"},
        "Practitioner/pardeep": {"start": "2024-06-03"},
    }
    # Called again (a restart, the move complete), the dates move; nobody is added twice.
    done = handover_care_team(joined, SAM, PARDEEP, START, START + timedelta(days=70))
    assert len(done["participant"]) == 5
    get_fhir_model_class("CareTeam").model_validate(done)
