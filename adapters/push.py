"""Outbound HTTP to partner FHIR servers: PUT [base]/[type]/[id], DELETE for recalls,
an empty POST for Subscriptions that asked not to be sent content.

One pooled `requests.Session` per delivery thread, explicit timeouts, no retries here
(the outbox retries, with backoff), and no redirects followed: a partner endpoint that
points elsewhere must be re-registered, not silently obeyed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import urljoin, urlparse

import orjson
import requests
from requests.adapters import HTTPAdapter

FHIR_JSON = "application/fhir+json"
# A partner's answer is read only this far: nothing in it is needed.
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None = None
    error: str | None = None
    retry_after: str | None = None  # the raw header, for 429/503


def resource_url(base: str, rtype: str, rid: str) -> str:
    return f"{base.rstrip('/')}/{rtype}/{rid}"


class HttpSender:
    """Thread-safe: each calling thread gets its own pooled Session."""

    def __init__(self, connect_timeout: float, read_timeout: float, pool_size: int = 16) -> None:
        self.timeout = (connect_timeout, read_timeout)
        self.pool_size = pool_size
        self._local = threading.local()

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            adapter = HTTPAdapter(pool_connections=self.pool_size, pool_maxsize=self.pool_size, max_retries=0)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            s.trust_env = False  # never route partner traffic through an ambient proxy
            self._local.session = s
        return s

    def put(self, base: str, rtype: str, rid: str, body: bytes, headers: dict[str, str]) -> Outcome:
        h = {"Content-Type": FHIR_JSON, "Accept": FHIR_JSON, **headers}
        return self._send("PUT", resource_url(base, rtype, rid), h, body, ok_statuses=())

    def delete(self, base: str, rtype: str, rid: str, headers: dict[str, str]) -> Outcome:
        # Already gone is as good as deleted.
        return self._send(
            "DELETE",
            resource_url(base, rtype, rid),
            {"Accept": FHIR_JSON, **headers},
            None,
            ok_statuses=(404, 410),
        )

    def notify(self, endpoint: str, headers: dict[str, str]) -> Outcome:
        return self._send("POST", endpoint, dict(headers), b"", ok_statuses=())

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, ok_statuses: tuple[int, ...]
    ) -> Outcome:
        try:
            with self._session().request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            ) as r:
                status = r.status_code
                if 300 <= status < 400:
                    return Outcome(False, status, _redirect_error(url, r.headers.get("location")))
                # Read (a bounded part of) the answer, so a garbled one fails here, not later.
                answer = bytearray()
                for chunk in r.iter_content(16 * 1024):
                    answer += chunk
                    if len(answer) >= MAX_ANSWER_BYTES:
                        break
                if 200 <= status < 300 or status in ok_statuses:
                    if _garbled(r.headers.get("content-type"), bytes(answer)):
                        return Outcome(False, status, f"{method} {url} answered {status} with a garbled body")
                    return Outcome(True, status)
                return Outcome(
                    False,
                    status,
                    f"{method} {url} answered {status} {r.reason or ''}".strip(),
                    r.headers.get("retry-after"),
                )
        except requests.Timeout:
            return Outcome(
                False, None, f"{method} {url} timed out (limits {self.timeout[0]}s/{self.timeout[1]}s)"
            )
        except requests.RequestException as exc:
            return Outcome(False, None, f"{method} {url} failed: {_short(exc)}")
        except Exception as exc:  # a garbled answer can surface as anything from the parser
            return Outcome(False, None, f"{method} {url} failed: {type(exc).__name__}: {_short(exc)}")


def _garbled(content_type: str | None, answer: bytes) -> bool:
    """A body that says it is JSON but is not: a broken partner or something in the way."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if not answer.strip() or kind not in ("application/fhir+json", "application/json"):
        return False
    if len(answer) >= MAX_ANSWER_BYTES:
        return False  # read only in part: not judged
    try:
        orjson.loads(answer)
    except orjson.JSONDecodeError:
        return True
    return False


def _redirect_error(url: str, location: str | None) -> str:
    target = urljoin(url, location or "")
    where = urlparse(target).netloc
    if where and where != urlparse(url).netloc:
        return f"{url} redirected to another host ({where}); carebridge does not follow redirects"
    return f"{url} redirected to {target}; carebridge does not follow redirects: register the final URL"


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."
