"""Read a page's main form as a browser would submit it (hidden inputs, ticked radios
and boxes, text inputs), so HTTP-level tests post exactly what the page offers."""

from __future__ import annotations

from html.parser import HTMLParser


class _Form(HTMLParser):
    def __init__(self, css_class: str) -> None:
        super().__init__()
        self.css_class = css_class
        self.inside = False
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.radios: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.css_class in a.get("class", "").split():
            self.inside = True
            self.action = a.get("action")
        elif tag == "input" and self.inside and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("radio", "checkbox"):
                self.radios.setdefault(a["name"], []).append(a.get("value", "on"))
                if "checked" in a:
                    self.fields[a["name"]] = a.get("value", "on")
            else:
                self.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def main_form(html: str, css_class: str = "form") -> tuple[str, dict[str, str], dict[str, list[str]]]:
    """(action, fields as submitted, every radio/checkbox name with its values)."""
    parser = _Form(css_class)
    parser.feed(html)
    assert parser.action, "the page has no form"
    return parser.action, parser.fields, parser.radios
