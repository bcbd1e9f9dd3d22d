"""Gradual transfer of care between two services, as pure functions over plain dicts.

The shape comes from the people who asked for it (seeds/000_..., section 3, and
CONTRACTS.md section 6): service A keeps in touch while service B's key worker is
introduced, then the two take turns until the person has moved.

    week   1  2  3  4* 5  6  7  8  9  10 ...
    owner  A  A  A  A  A  B  A  B  A  B  ...     (* A agrees the plan, introduces B)

Shorter handovers (a rule of ours; the seed only shows eight weeks). The handover
always ends with the seed's tail: the introduction week, then turns that finish with B.

- 5-7 weeks: drop the quiet weeks at the start, so the introduction falls in week
  ``weeks - 4`` and the last four weeks read A, B, A, B as in the seed
  (5 weeks: A* A B A B; 6: A A* A B A B; 7: A A A* A B A B).
- 2-4 weeks: week 1 is the introduction and the rest alternate, ending on B
  (4: A* B A B; 3: A* A B; 2: A* B).
- 1 week (or fewer) is not a gradual handover: ValueError.

Nothing here does I/O; the server turns the results into stored resources.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from itertools import groupby

from .vocabulary import (
    SECTION_SYSTEM,
    SECTIONS,
    TRANSFER_INPUT_SYSTEM,
    TRANSFER_INPUTS,
    TRANSFER_OF_CARE,
    TRANSFER_SIDE_SYSTEM,
)

OWNER_A = "A"  # the service the person is leaving
OWNER_B = "B"  # the service the person is moving to
PATTERNS = ("gradual", "custom")
SEED_WEEKS = 8
SEED_INTRODUCTION_WEEK = 4

# How a transfer's `frequency` parameter reads in plain words; anything else is used as
# written ("2 or 3 times a week").
FREQUENCY_WORDS: dict[str, str] = {
    "daily": "every day",
    "twice-weekly": "twice a week",
    "weekly": "once a week",
    "fortnightly": "once every two weeks",
}

TASK_STATUSES = (
    "draft",
    "requested",
    "received",
    "accepted",
    "rejected",
    "ready",
    "cancelled",
    "in-progress",
    "on-hold",
    "failed",
    "completed",
    "entered-in-error",
)

# id_for(kind, n): kind "task" (n=0, the parent), "week" (n=1..weeks), "section" (n=0).
IdFor = Callable[[str, int], str]


@dataclass(frozen=True, slots=True)
class WeekPlan:
    """One week of a handover: who leads it, when, and what the person can expect."""

    week: int  # 1-based
    owner: str  # "A" | "B"
    start: date
    end: date  # start + 6 days: a week is inclusive of both ends
    introduction: bool  # A agrees the plan with the person and introduces B's key worker
    description: str  # plain words, addressed to the person


@dataclass(frozen=True, slots=True)
class Service:
    """One side of a handover, as both machines and the person will see it."""

    organization: str  # "Organization/awp-bath-cmht"
    name: str  # how the person hears of it: "the Bath Community Mental Health Team"
    worker: str | None = None  # "Practitioner/sam-patel"
    worker_name: str | None = None  # the name the person uses: "Sam"
    worker_display: str | None = None  # full name for the Reference display: "Sam Patel"


@dataclass(frozen=True, slots=True)
class TransferResources:
    """What one planned transfer is made of (the Bundle order of $plan-transfer)."""

    parent: dict  # the parent Task
    weeks: list[dict]  # one child Task per week, in week order
    section: dict  # the `transfer` section CarePlan
    plan: list[WeekPlan]

    def resources(self) -> list[dict]:
        """Parent first, so every resource comes after the ones it references."""
        return [self.parent, *self.weeks, self.section]


# --------------------------------------------------------------------------- schedule


def weekly_owners(weeks: int = SEED_WEEKS) -> list[str]:
    """Who leads each week of a gradual handover ("A" or "B"), week 1 first."""
    intro = gradual_introduction_week(weeks)
    if weeks >= SEED_WEEKS:
        # Seed table for weeks 1-8, then keep alternating: even weeks B, odd weeks A.
        return [OWNER_A] * 5 + [OWNER_B if n % 2 == 0 else OWNER_A for n in range(6, weeks + 1)]
    if intro > 1:
        # 5-7 weeks: lead-in A weeks, the introduction, a quiet A week, then B, A, B.
        return [OWNER_A] * (intro + 1) + [OWNER_B, OWNER_A, OWNER_B]
    # 2-4 weeks: the introduction, then turns that end on B.
    tail = weeks - 1
    return [OWNER_A] + [OWNER_B if (tail - 1 - i) % 2 == 0 else OWNER_A for i in range(tail)]


def gradual_introduction_week(weeks: int = SEED_WEEKS) -> int:
    """The week in which A agrees the plan with the person and introduces B (1-based)."""
    if weeks < 2:
        raise ValueError("a gradual handover needs at least 2 weeks: an introduction and B")
    if weeks >= SEED_WEEKS:
        return SEED_INTRODUCTION_WEEK
    if weeks >= 5:
        return weeks - 4
    return 1


def custom_introduction_week(owners: Sequence[str]) -> int | None:
    """For a custom pattern: the A week right before B's first week, if there is one."""
    first_b = owners.index(OWNER_B)
    return first_b if first_b > 0 else None  # week numbers are 1-based


def frequency_in_words(frequency: str) -> str:
    return FREQUENCY_WORDS.get(frequency.strip().lower(), frequency.strip())


def plan_weeks(
    start: date,
    weeks: int = SEED_WEEKS,
    pattern: str = "gradual",
    custom: list[str] | None = None,
    *,
    frequency: str = "weekly",
    a_worker: str | None = None,
    b_worker: str | None = None,
    a_service: str = "Service A",
    b_service: str = "Service B",
) -> list[WeekPlan]:
    """Week-by-week plan: owner, dates (week n starts start + 7*(n-1)) and plain words.

    `pattern` "gradual" follows `weekly_owners`; "custom" takes `custom`, one "A"/"B" per
    week. Raises ValueError for anything that is not a plan a person could follow.
    """
    owners, intro = _owners_for(weeks, pattern, custom)
    first_b = owners.index(OWNER_B) + 1
    words = _Words(frequency_in_words(frequency), a_worker, b_worker, a_service, b_service)
    plan = []
    for n, owner in enumerate(owners, start=1):
        week_start = start + timedelta(days=7 * (n - 1))
        plan.append(
            WeekPlan(
                week=n,
                owner=owner,
                start=week_start,
                end=week_start + timedelta(days=6),
                introduction=n == intro,
                description=words.week(n, owner, intro, first_b, last=n == len(owners)),
            )
        )
    return plan


def _owners_for(weeks: int, pattern: str, custom: list[str] | None) -> tuple[list[str], int | None]:
    if pattern == "gradual":
        if custom is not None:
            raise ValueError("a list of weekly owners is only used with pattern 'custom'")
        return weekly_owners(weeks), gradual_introduction_week(weeks)
    if pattern != "custom":
        raise ValueError(f"unknown handover pattern {pattern!r}: use one of {PATTERNS}")
    if not custom:
        raise ValueError("pattern 'custom' needs one owner ('A' or 'B') per week")
    owners = [str(o).strip().upper() for o in custom]
    if any(o not in (OWNER_A, OWNER_B) for o in owners):
        raise ValueError("each week's owner must be 'A' (current service) or 'B' (new service)")
    if len(owners) != weeks:
        raise ValueError(f"pattern 'custom' lists {len(owners)} weeks but weeks is {weeks}")
    if OWNER_B not in owners:
        raise ValueError("a handover needs at least one week with the new service (B)")
    return owners, custom_introduction_week(owners)


@dataclass(frozen=True, slots=True)
class _Words:
    """The sentences a person reads about their move, in one place so they stay consistent."""

    how_often: str
    a_worker: str | None
    b_worker: str | None
    a_service: str
    b_service: str

    @property
    def a(self) -> str:
        return f"{self.a_worker or 'your care coordinator'} from {self.a_service}"

    @property
    def b(self) -> str:
        if self.b_worker:
            return f"{self.b_worker} from {self.b_service}, your new key worker,"
        return f"your new key worker from {self.b_service}"

    @property
    def b_introduced(self) -> str:
        return f"{self.b_worker}, your new key worker" if self.b_worker else "your new key worker"

    @property
    def both(self) -> str:
        if self.a_worker and self.b_worker:
            return f"{self.a_worker} and {self.b_worker}"
        return "Your care coordinator and your new key worker"

    def week(self, n: int, owner: str, intro: int | None, first_b: int, *, last: bool) -> str:
        if owner == OWNER_A and n == intro:
            text = (
                f"{self.a} will contact you {self.how_often}, agree with you the plan for "
                f"moving to {self.b_service}, and introduce {self.b_introduced}."
            )
        elif owner == OWNER_A:
            text = f"{self.a} will contact you {self.how_often}"
            if intro is not None and n < intro:
                text += ", as agreed with you."
            else:
                text += "." if n < first_b else f". {self._taking_turns()}"
        else:
            text = f"{self.b} will contact you {self.how_often}"
            text += "." if n == first_b else f". {self._taking_turns()}"
        if last:
            text += (
                " This is the last planned week of the move. If you do not feel ready yet,"
                " say so and the move can be paused."
            )
        return f"Week {n}: {text}"

    def _taking_turns(self) -> str:
        return f"{self.both} take turns and keep each other up to date about how you are doing."

    def who(self, owner: str) -> str:
        if owner == OWNER_A:
            return self.a_worker or f"your care coordinator from {self.a_service}"
        return self.b_worker or f"your new key worker from {self.b_service}"


# --------------------------------------------------------------------------- resources


def prefixed_ids(prefix: str) -> IdFor:
    """Readable ids: `prefix` for the parent Task, `prefix-week-N`, `prefix-section`."""

    def id_for(kind: str, n: int) -> str:
        if kind == "task":
            return prefix
        if kind == "week":
            return f"{prefix}-week-{n}"
        if kind == "section":
            return f"{prefix}-section"
        raise ValueError(f"unknown transfer resource kind {kind!r}")

    return id_for


def build_transfer_resources(
    *,
    patient: str,
    care_plan: str,
    service_a: Service,
    service_b: Service,
    start: date,
    id_for: IdFor,
    weeks: int = SEED_WEEKS,
    pattern: str = "gradual",
    custom: list[str] | None = None,
    frequency: str = "weekly",
    status: str = "requested",
    today: date | None = None,
    authored_on: date | None = None,
) -> TransferResources:
    """The parent Task, one child Task per week and the `transfer` section CarePlan.

    `patient` and `care_plan` are references ("Patient/millie", "CarePlan/millie-plan");
    `status` is the parent Task's. With `today`, weeks that have ended are `completed`
    (the rest stay `requested`) and the parent says which week the person is in.
    """
    if status not in TASK_STATUSES:
        raise ValueError(f"unknown Task status {status!r}")
    plan = plan_weeks(
        start,
        weeks,
        pattern,
        custom,
        frequency=frequency,
        a_worker=service_a.worker_name,
        b_worker=service_b.worker_name,
        a_service=service_a.name,
        b_service=service_b.name,
    )
    parent_id = id_for("task", 0)
    section_id = id_for("section", 0)
    sides = {OWNER_A: service_a, OWNER_B: service_b}

    parent: dict = {
        "resourceType": "Task",
        "id": parent_id,
        "meta": _transfer_tag(),
        "status": status,
        "intent": "plan",
        "code": {"coding": [dict(TRANSFER_OF_CARE)], "text": "Transfer of care"},
        "description": overview(plan, service_a, service_b, frequency),
        "focus": {"reference": care_plan},
        "for": {"reference": patient},
        "requester": _org_ref(service_a),
        "owner": _org_ref(service_b),
        "restriction": {"period": _whole(plan)},
        "input": _parent_inputs(plan, frequency, pattern, service_a, service_b),
    }
    if authored_on is not None:
        parent["authoredOn"] = authored_on.isoformat()
    if today is not None:
        parent["businessStatus"] = {"text": _where_we_are(plan, today)}

    children = []
    for week in plan:
        side = sides[week.owner]
        child: dict = {
            "resourceType": "Task",
            "id": id_for("week", week.week),
            "meta": _transfer_tag(),
            "partOf": [{"reference": f"Task/{parent_id}"}],
            "status": "completed" if today is not None and week.end < today else "requested",
            "intent": "plan",
            "code": {"text": f"Transfer of care: week {week.week} of {len(plan)}"},
            "description": week.description,
            "focus": {"reference": care_plan},
            "for": {"reference": patient},
            "requester": _org_ref(service_a),
            "owner": _org_ref(side),
            "performerType": [_side_concept(week.owner)],
            "executionPeriod": _period(week),
            "input": [_input("week", valueInteger=week.week)],
        }
        if side.worker:
            child["input"].insert(0, _input("named-worker", valueReference=_worker_ref(side)))
        children.append(child)

    section: dict = {
        "resourceType": "CarePlan",
        "id": section_id,
        "meta": _transfer_tag(),
        "intent": "plan",
        "title": SECTIONS["transfer"],
        "partOf": [{"reference": care_plan}],
        "subject": {"reference": patient},
        "author": _worker_ref(service_a) if service_a.worker else _org_ref(service_a),
        "supportingInfo": [{"reference": f"Task/{parent_id}"}],
    }
    week_statuses = {w.week: _activity_status(w, today) for w in plan}
    section = describe_section(
        section,
        plan,
        service_a,
        service_b,
        frequency,
        status=section_status(status),
        week_statuses=week_statuses,
    )
    return TransferResources(parent=parent, weeks=children, section=section, plan=plan)


# --------------------------------------------------------------------------- re-planning


def resume_plan(plan: Sequence[WeekPlan], done: set[int], resume_on: date) -> list[WeekPlan]:
    """After a pause: weeks in `done` keep their dates; the rest follow on from `resume_on`,
    one a week, in their original order, with the same owners and words."""
    out = []
    n = 0
    for week in plan:
        if week.week in done:
            out.append(week)
            continue
        start = resume_on + timedelta(days=7 * n)
        out.append(replace(week, start=start, end=start + timedelta(days=6)))
        n += 1
    return out


def plan_from_tasks(
    parent: dict, weeks: Sequence[dict], service_a: Service, service_b: Service
) -> list[WeekPlan]:
    """The week plan a stored transfer stands for: words from its inputs, dates from its weeks.

    Raises ValueError when the parent Task does not carry the inputs carebridge writes.
    """
    inputs = task_inputs(parent)
    try:
        count = int(inputs["weeks"])
        pattern = str(inputs["pattern"])
        owners = list(str(inputs["owners"]))
        start = date.fromisoformat(parent["restriction"]["period"]["start"][:10])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"Task/{parent.get('id')} is not a transfer carebridge planned: {exc}") from None
    plan = plan_weeks(
        start,
        count,
        pattern,
        owners if pattern == "custom" else None,
        frequency=str(inputs.get("frequency") or "weekly"),
        a_worker=service_a.worker_name,
        b_worker=service_b.worker_name,
        a_service=service_a.name,
        b_service=service_b.name,
    )
    dates = {}
    for task in weeks:
        n = task_inputs(task).get("week")
        period = task.get("executionPeriod") or {}
        if isinstance(n, int) and period.get("start") and period.get("end"):
            dates[n] = (date.fromisoformat(period["start"][:10]), date.fromisoformat(period["end"][:10]))
    return [replace(w, start=dates[w.week][0], end=dates[w.week][1]) if w.week in dates else w for w in plan]


def task_inputs(task: dict) -> dict[str, object]:
    """A transfer Task's inputs by code: {"weeks": 8, "key-worker": {...Reference}, ...}."""
    out: dict[str, object] = {}
    for item in task.get("input") or []:
        codes = [
            c.get("code")
            for c in (item.get("type") or {}).get("coding") or []
            if c.get("system") == TRANSFER_INPUT_SYSTEM
        ]
        values = [v for k, v in item.items() if k.startswith("value")]
        if codes and values:
            out[codes[0]] = values[0]
    return out


# --------------------------------------------------------------------------- the section


def describe_section(
    section: dict,
    plan: Sequence[WeekPlan],
    service_a: Service,
    service_b: Service,
    frequency: str,
    *,
    status: str,
    week_statuses: dict[int, str],
    note: str | None = None,
) -> dict:
    """`section` with its words, dates and weekly activities brought up to date.

    `week_statuses` gives each week's CarePlan activity status (scheduled, in-progress,
    on-hold, completed, cancelled); `note` is a sentence added to the overview (a pause,
    a restart, the move being complete).
    """
    sides = {OWNER_A: service_a, OWNER_B: service_b}
    text = overview(plan, service_a, service_b, frequency)
    if note:
        text += f" {note}"
    return {
        **section,
        "status": status,
        "description": text,
        "period": _whole(plan),
        "activity": [
            {
                "detail": {
                    "kind": "Task",
                    "status": week_statuses.get(week.week, "scheduled"),
                    "description": week.description,
                    "scheduledPeriod": _period(week),
                    "performer": _performers(sides[week.owner]),
                }
            }
            for week in plan
        ],
    }


# Each week's CarePlan activity status, from its Task's status.
ACTIVITY_STATUS = {
    "requested": "scheduled",
    "received": "scheduled",
    "accepted": "scheduled",
    "in-progress": "in-progress",
    "on-hold": "on-hold",
    "completed": "completed",
    "cancelled": "cancelled",
    "rejected": "cancelled",
    "failed": "stopped",
    "entered-in-error": "entered-in-error",
}


def overview(plan: Sequence[WeekPlan], service_a: Service, service_b: Service, frequency: str) -> str:
    """One paragraph the person can read: where, when, who each week, and the way out."""
    how_often = frequency_in_words(frequency)
    words = _Words(how_often, service_a.worker_name, service_b.worker_name, service_a.name, service_b.name)
    runs = []
    for owner, group in groupby(plan, key=lambda w: w.owner):
        weeks = [w.week for w in group]
        span = f"week {weeks[0]}" if len(weeks) == 1 else f"weeks {weeks[0]}-{weeks[-1]}"
        runs.append(f"{span} {words.who(owner)}")
    intro = next((w for w in plan if w.introduction), None)
    text = (
        f"Your care is moving from {words.a_service} to {words.b_service}, gradually, over "
        f"{len(plan)} weeks, from {_day(plan[0].start)} to {_day(plan[-1].end)}. "
        f"Someone will contact you {how_often}. Who to expect: {'; '.join(runs)}."
    )
    if intro is not None:
        text += f" In week {intro.week} you will agree the plan together and meet {words.b_introduced}."
    text += (
        f" {words.both} keep in touch with each other and with you throughout. If you do not"
        " feel ready to move on, say so and the move can be paused."
    )
    return text


def day_in_words(d: date) -> str:
    """'Monday 3 June 2024'."""
    return _day(d)


# --------------------------------------------------------------------------- the care team

# How the care team names the people a handover adds, by side.
_TEAM_ROLES = {
    (OWNER_A, "org"): "Current service, until the move is complete",
    (OWNER_A, "worker"): "Care coordinator, until the move is complete",
    (OWNER_B, "org"): "New service",
    (OWNER_B, "worker"): "New key worker",
}


def handover_care_team(
    team: dict,
    service_a: Service,
    service_b: Service,
    start: date,
    a_until: date | None,
    b_until: date | None = None,
) -> dict:
    """`team` with both services and their named workers in it for the handover.

    A (and A's care coordinator) are members until `a_until`, B (and B's key worker)
    from `start` on (until `b_until` if the move is called off), so a named contact
    exists throughout. Calling it again moves those dates; other members are untouched.
    """
    ends = {OWNER_A: a_until, OWNER_B: b_until}
    added: list[dict] = []
    for side, service in ((OWNER_A, service_a), (OWNER_B, service_b)):
        members = [("org", _org_ref(service))]
        if service.worker:
            members.append(("worker", _worker_ref(service)))
        for what, member in members:
            period: dict = {"start": start.isoformat()}
            if ends[side] is not None:
                period["end"] = ends[side].isoformat()  # type: ignore[union-attr]
            added.append(
                {
                    "role": [
                        {
                            "coding": [
                                {"system": TRANSFER_SIDE_SYSTEM, "code": side, "display": _SIDE_DISPLAY[side]}
                            ],
                            "text": _TEAM_ROLES[(side, what)],
                        }
                    ],
                    "member": member,
                    "period": period,
                }
            )
    keys = {(_side_of(p), (p.get("member") or {}).get("reference")) for p in added}
    kept = [
        p
        for p in team.get("participant") or []
        if (_side_of(p), (p.get("member") or {}).get("reference")) not in keys
    ]
    return {**team, "participant": kept + added}


def _side_of(participant: dict) -> str | None:
    for role in participant.get("role") or []:
        for coding in role.get("coding") or []:
            if coding.get("system") == TRANSFER_SIDE_SYSTEM:
                return coding.get("code")
    return None


# --------------------------------------------------------------------------- small parts


def _transfer_tag() -> dict:
    return {"tag": [{"system": SECTION_SYSTEM, "code": "transfer", "display": SECTIONS["transfer"]}]}


def _whole(plan: Sequence[WeekPlan]) -> dict:
    return {"start": plan[0].start.isoformat(), "end": plan[-1].end.isoformat()}


def _period(week: WeekPlan) -> dict:
    return {"start": week.start.isoformat(), "end": week.end.isoformat()}


def _where_we_are(plan: list[WeekPlan], today: date) -> str:
    if today < plan[0].start:
        return f"Not started: week 1 begins {_day(plan[0].start)}"
    if today > plan[-1].end:
        return f"All {len(plan)} planned weeks have passed"
    current = next((w for w in plan if w.start <= today <= w.end), None)
    if current is None:  # between weeks, after a pause
        upcoming = next(w for w in plan if w.start > today)
        return f"Week {upcoming.week} of {len(plan)} begins {_day(upcoming.start)}"
    note = ": introduction week" if current.introduction else ""
    return f"Week {current.week} of {len(plan)}{note}"


def _day(d: date) -> str:
    return f"{d.strftime('%A')} {d.day} {d.strftime('%B %Y')}"


def _org_ref(service: Service) -> dict:
    return {"reference": service.organization}


def _worker_ref(service: Service) -> dict:
    ref: dict = {"reference": service.worker}
    display = service.worker_display or service.worker_name
    if display:
        ref["display"] = display
    return ref


def _performers(service: Service) -> list[dict]:
    return [_org_ref(service)] + ([_worker_ref(service)] if service.worker else [])


_SIDE_DISPLAY = {
    OWNER_A: "Care coordinator, current service (A)",
    OWNER_B: "Key worker, new service (B)",
}


def _side_concept(owner: str) -> dict:
    display = _SIDE_DISPLAY[owner]
    return {"coding": [{"system": TRANSFER_SIDE_SYSTEM, "code": owner, "display": display}]}


def _input(code: str, **value: object) -> dict:
    concept = {"coding": [{"system": TRANSFER_INPUT_SYSTEM, "code": code}]}
    concept["coding"][0]["display"] = TRANSFER_INPUTS[code]
    return {"type": concept, **value}


def _parent_inputs(plan: list[WeekPlan], frequency: str, pattern: str, a: Service, b: Service) -> list[dict]:
    inputs = [
        _input("frequency", valueString=frequency),
        _input("weeks", valueInteger=len(plan)),
        _input("pattern", valueCode=pattern),
        _input("owners", valueString="".join(w.owner for w in plan)),
    ]
    if a.worker:
        inputs.append(_input("care-coordinator", valueReference=_worker_ref(a)))
    if b.worker:
        inputs.append(_input("key-worker", valueReference=_worker_ref(b)))
    return inputs


def section_status(task_status: str) -> str:
    """The section CarePlan follows the parent Task: a paused move is an on-hold plan."""
    return {
        "draft": "draft",
        "on-hold": "on-hold",
        "completed": "completed",
        "cancelled": "revoked",
        "rejected": "revoked",
        "failed": "revoked",
        "entered-in-error": "entered-in-error",
    }.get(task_status, "active")


def _activity_status(week: WeekPlan, today: date | None) -> str:
    if today is None or today < week.start:
        return "scheduled"
    return "completed" if week.end < today else "in-progress"
