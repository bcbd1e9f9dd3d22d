"""The plain-language HTML care plan: the person's words as written, sections in the
order a person reads them, and only what the reader was given (it never decides consent,
and never says what is missing)."""

from __future__ import annotations

import copy

from lxml import html
from plan_world import fhir_family, fresh_person, golden

from carebridge.mappings.plan_html import render_plan_html
from carebridge.mappings.vocabulary import SECTIONS


def page(resources: list[dict], **kw: object) -> html.HtmlElement:
    return html.fromstring(render_plan_html(resources, **kw))


def test_the_page_shows_the_sections_in_reading_order_in_the_persons_words() -> None:
    millie = golden("millie")
    doc = page(fhir_family(millie))
    assert doc.get("lang") == "en-GB"
    assert doc.findtext(".//title") == "Millie's care and support plan"
    assert [h.text for h in doc.iter("h2")] == [SECTIONS[code] for code in millie["sections"]]
    words = [p.text_content() for p in doc.find_class("words")]
    assert millie["sections"]["about-me"]["text"] in words
    goals = [g.text_content() for g in doc.find_class("mine")]
    assert "\u201cStart the Level 2 hairdressing course at Bath College in September.\u201d" in goals


def test_the_persons_words_are_escaped_never_run() -> None:
    doc = fresh_person("ava")
    doc["sections"]["about-me"]["text"] = "I like <b>bold</b> tea & <script>alert('x')</script> biscuits"
    text = render_plan_html(fhir_family(doc))
    assert "<script>" not in text
    assert "I like &lt;b&gt;bold&lt;/b&gt; tea &amp; &lt;script&gt;" in text


def test_a_partner_sees_only_the_sections_it_was_given_and_no_hint_of_the_rest() -> None:
    zoe = fhir_family(golden("zoe"))
    shared = [r for r in zoe if r.get("title") not in (SECTIONS["crisis-plan"], SECTIONS["risk-assessment"])]
    shared = [r for r in shared if r["resourceType"] != "RiskAssessment"]
    text = render_plan_html(shared, audience="Bath Mind")
    assert "My crisis plan" not in text and "Risks, talked about openly" not in text
    listed = [a.text for a in html.fromstring(text).iter("a")]  # the page's own contents list
    hidden = ("crisis-plan", "risk-assessment")
    assert listed == [SECTIONS[c] for c in golden("zoe")["sections"] if c not in hidden]
    assert "This copy is for Bath Mind" in text


def test_emergency_contacts_come_first_and_plainly() -> None:
    doc = page(fhir_family(golden("richard")))
    (box,) = doc.find_class("emergency")
    assert box.findtext("h3") == "In an emergency or a crisis"
    assert "NHS 111, mental health option" in box.text_content()


def test_the_persons_own_copy_speaks_to_them() -> None:
    text = render_plan_html(fhir_family(golden("fred")))
    assert "This is your plan. You decide who sees it" in text
    assert "ask John Hughes" in text


def test_a_plan_with_few_sections_still_reads_whole() -> None:
    ava = copy.deepcopy(golden("ava"))
    doc = page(fhir_family(ava))
    assert [h.text for h in doc.iter("h2")] == [SECTIONS[c] for c in ava["sections"]]
    facts = doc.find_class("facts")[0].text_content()
    assert "Sam Patel" in facts and "Next review" in facts
