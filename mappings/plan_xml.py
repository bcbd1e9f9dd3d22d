"""The care-plan document as XML (docs/schemas/care-plan-document.xsd), both ways.

Pure: bytes in, documents out, and back. Parsing is hardened: a DOCTYPE or ENTITY
declaration is refused before lxml sees the bytes, and the parser itself never loads a
DTD, resolves an entity or touches the network, so an XXE or "billion laughs" file is a
clear error, never an expansion. The XML names mirror the JSON keys; repeated items are
repeated elements (`<goal>`, `<contact>`, ...) and a section is `<section heading="...">`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from carebridge.mappings.plan_document import FORMAT, FieldError

NS = "https://carebridge.example/ns/care-plan"
_Q = f"{{{NS}}}"

# Grammar: element -> ordered (XML child, JSON key, kind). Kinds: text, bool, int,
# obj:<element>, list:<element> (the JSON key holds a list of such items).
GRAMMAR: dict[str, tuple[tuple[str, str, str], ...]] = {
    "carePlan": (("person", "person", "obj:person"), ("plan", "plan", "obj:plan")),
    "person": tuple(
        (k, k, "text")
        for k in ("nhsNumber", "givenName", "familyName", "dateOfBirth", "gender", "town", "phone")
    ),
    "plan": (
        ("title", "title", "text"),
        ("summary", "summary", "text"),
        ("cpa", "cpa", "bool"),
        ("started", "started", "text"),
        ("nextReview", "nextReview", "text"),
        ("team", "team", "text"),
        ("coordinator", "coordinator", "obj:coordinator"),
    ),
    "coordinator": tuple((k, k, "text") for k in ("name", "role", "phone", "id")),
    "section": (
        ("text", "text", "text"),
        ("activity", "activities", "list:activity"),
        ("agreedContact", "agreedContact", "list:agreedContact"),
        ("contact", "contacts", "list:contact"),
        ("person", "people", "list:relative"),
        ("goal", "goals", "list:goal"),
        ("assessed", "assessed", "text"),
        ("risk", "risks", "list:risk"),
        ("mitigation", "mitigation", "text"),
        ("personView", "personView", "text"),
    ),
    "activity": (("what", "what", "text"), ("when", "when", "text")),
    "agreedContact": (("method", "method", "text"), ("frequency", "frequency", "text")),
    "contact": (
        ("name", "name", "text"),
        ("role", "role", "text"),
        ("phone", "phone", "text"),
        ("emergency", "emergency", "bool"),
    ),
    "relative": (
        ("name", "name", "text"),
        ("relationship", "relationship", "text"),
        ("phone", "phone", "text"),
    ),
    "goal": (
        ("words", "words", "text"),
        ("start", "start", "text"),
        ("due", "due", "text"),
        ("recoveryStar", "recoveryStar", "obj:star"),
    ),
    "star": (("area", "area", "text"), ("score", "score", "int")),
    "risk": (("what", "what", "text"), ("level", "level", "text"), ("why", "why", "text")),
}

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
)


@dataclass
class XmlRecord:
    """One `<carePlan>` of a file: the document read from it, or why it could not be read."""

    record: str  # "/carePlan" or "/carePlans/carePlan[2]"
    data: dict | None
    errors: list[FieldError] = field(default_factory=list)
    source: bytes = b""


def _refused(where: str, message: str) -> list[XmlRecord]:
    return [XmlRecord(where, None, [FieldError("", message)])]


def read_xml(raw: bytes) -> list[XmlRecord]:
    """The care-plan documents in an XML file (a `<carePlan>` or a `<carePlans>` list)."""
    if b"<!DOCTYPE" in raw[:4096].upper() or b"<!ENTITY" in raw.upper():
        return _refused("/", "XML with a DOCTYPE or ENTITY declaration is refused (a care-plan has neither)")
    try:
        root = etree.fromstring(raw, _PARSER)
    except etree.XMLSyntaxError as exc:
        return _refused("/", f"the XML is not well-formed (is the file cut short?): {exc}")
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        return _refused("/", "XML with a DTD is refused")
    if root.tag == f"{_Q}carePlans":
        out = []
        for i, child in enumerate((c for c in root if isinstance(c.tag, str)), start=1):
            where = f"/carePlans/carePlan[{i}]"
            if child.tag != f"{_Q}carePlan":
                out += _refused(where, f"expected <carePlan>, found <{_local(child)}>")
            else:
                out.append(_record(child, where))
        return out or _refused("/carePlans", "<carePlans> holds no <carePlan>")
    if root.tag != f"{_Q}carePlan":
        name = etree.QName(root)
        where_from = name.namespace or "no namespace"
        return _refused(
            "/",
            f"the root element must be <carePlan> in namespace {NS}, not <{name.localname}> in {where_from}",
        )
    return [_record(root, "/carePlan")]


def _record(element: etree._Element, where: str) -> XmlRecord:
    errors: list[FieldError] = []
    data: dict = {"format": FORMAT}
    version = element.get("version")
    data["version"] = int(version) if version and version.isdigit() else version
    known = {f"{_Q}{name}" for name, _, _ in GRAMMAR["carePlan"]} | {f"{_Q}sections"}
    for child in element:
        if isinstance(child.tag, str) and child.tag not in known:
            errors.append(FieldError(_local(child), f"unknown element <{_local(child)}>"))
    data.update(_read(element, "carePlan", "", errors))
    sections_el = element.find(f"{_Q}sections")
    if sections_el is not None:
        sections: dict = {}
        for child in sections_el:
            if not isinstance(child.tag, str):
                continue
            if child.tag != f"{_Q}section":
                errors.append(
                    FieldError(
                        f"sections.{_local(child)}",
                        f'unknown element <{_local(child)}>; use <section heading="...">',
                    )
                )
                continue
            heading = child.get("heading") or ""
            path = f"sections.{heading}"
            if not heading:
                errors.append(FieldError("sections", "a <section> needs a heading attribute"))
                continue
            if heading in sections:
                errors.append(FieldError(path, f"the section '{heading}' appears twice"))
                continue
            sections[heading] = _read(child, "section", path, errors)
        data["sections"] = sections
    return XmlRecord(where, None if errors else data, errors, etree.tostring(element))


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _read(element: etree._Element, kind: str, path: str, errors: list[FieldError]) -> dict:
    rules = {f"{_Q}{name}": (key, k) for name, key, k in GRAMMAR[kind]}
    out: dict = {}
    counts: dict[str, int] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        if child.tag not in rules:
            if kind != "carePlan":
                errors.append(
                    FieldError(f"{path}.{_local(child)}".lstrip("."), f"unknown element <{_local(child)}>")
                )
            continue
        key, how = rules[child.tag]
        here = f"{path}.{key}".lstrip(".")
        if how.startswith("list:"):
            i = counts.get(key, 0)
            counts[key] = i + 1
            out.setdefault(key, []).append(_read(child, how[5:], f"{here}[{i}]", errors))
            continue
        if key in out:
            errors.append(FieldError(here, f"<{_local(child)}> appears twice"))
            continue
        if how.startswith("obj:"):
            out[key] = _read(child, how[4:], here, errors)
        else:
            out[key] = _value(child, how, here, errors)
    return out


def _value(el: etree._Element, how: str, path: str, errors: list[FieldError]) -> object:
    if len(el):
        errors.append(FieldError(path, f"<{_local(el)}> holds elements; it should hold text"))
    text = el.text or ""
    if how == "bool":
        if text.strip() in ("true", "false"):
            return text.strip() == "true"
        errors.append(FieldError(path, f"'{text}' must be true or false"))
        return None
    if how == "int":
        if text.strip().lstrip("-").isdigit():
            return int(text.strip())
        errors.append(FieldError(path, f"'{text}' must be a whole number"))
        return None
    return text


def write_xml(docs: list[dict]) -> bytes:
    """One document as `<carePlan>`, several as `<carePlans>` (canonical documents)."""
    if len(docs) == 1:
        root = _document(docs[0])
    else:
        root = etree.Element(f"{_Q}carePlans", nsmap={None: NS})
        for doc in docs:
            root.append(_document(doc))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _document(doc: dict) -> etree._Element:
    root = etree.Element(f"{_Q}carePlan", nsmap={None: NS})
    root.set("version", str(doc.get("version", 1)))
    _write(root, "carePlan", doc)
    sections = etree.SubElement(root, f"{_Q}sections")
    for heading, content in doc.get("sections", {}).items():
        el = etree.SubElement(sections, f"{_Q}section")
        el.set("heading", heading)
        _write(el, "section", content)
    return root


def _write(parent: etree._Element, kind: str, data: dict) -> None:
    for name, key, how in GRAMMAR[kind]:
        if key not in data:
            continue
        value = data[key]
        if how.startswith("list:"):
            for item in value:
                _write(etree.SubElement(parent, f"{_Q}{name}"), how[5:], item)
        elif how.startswith("obj:"):
            _write(etree.SubElement(parent, f"{_Q}{name}"), how[4:], value)
        else:
            el = etree.SubElement(parent, f"{_Q}{name}")
            el.text = ("true" if value else "false") if how == "bool" else str(value)
