"""HTML for the person's pages: one Jinja2 environment, safe headers, friendly errors.

The pages carry no script at all (every action is a plain link or form), so the
Content-Security-Policy can forbid scripts outright.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from carebridge.consent.decide import BREAK_GLASS_KINDS
from carebridge.consent.sharing_form import listing, phrase
from carebridge.server.sharing_table import CRISIS_WORDS

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The sign-in link carries a token: never send it to another site as a Referer.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_env.globals["listing"] = listing
_env.globals["crisis_words"] = CRISIS_WORDS
_env.globals["emergency_kinds"] = BREAK_GLASS_KINDS
_env.filters["phrase"] = phrase

# Friendly words for each error status: (title, what to do).
ERRORS: dict[int, tuple[str, str]] = {
    400: ("Something in the form was not right", "Go back, check what you entered and try again."),
    401: ("Please sign in", "Use the link you were given, or ask your care coordinator for a new one."),
    403: ("We could not do that", "Go back to the page you came from and try again."),
    404: ("We cannot find that page", "Check the address, or go back to the start."),
    405: ("That did not work", "Use the links and buttons on the page, or go back to the start."),
    409: ("Something changed", "Someone else changed these choices. Please check them again."),
    413: ("That was too much at once", "Go back and try again with less."),
    422: ("We could not save that", "Go back, check your choices and try again."),
    500: ("Sorry, something went wrong on our side", "It has been recorded. Please try again later."),
    503: ("Sorry, we are busy", "Please try again in a minute."),
}


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("viewer", None)
    context.setdefault("csrf", "")
    context.setdefault("nav", None)
    context.setdefault("person_id", None)
    html = _env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=dict(HEADERS))


def error_page(status: int, message: str | None = None, **context: Any) -> HTMLResponse:
    title, hint = ERRORS.get(status, ERRORS[500] if status >= 500 else ERRORS[400])
    return render("error.html", status, title=title, message=message, hint=hint, **context)


def stylesheet() -> Response:
    css = (STATIC / "pages.css").read_bytes()
    return Response(
        css,
        media_type="text/css",
        headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
