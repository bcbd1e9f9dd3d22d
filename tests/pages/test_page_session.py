"""Sessions for the person's pages: signed, expiring, and carrying their CSRF token."""

from __future__ import annotations

from carebridge.server.auth import Signer
from carebridge.server.db import Database
from carebridge.server.page_session import IDLE_SECONDS, LONGEST_SECONDS, Sessions


def sessions(tmp_path) -> Sessions:
    return Sessions(Signer(Database(f"sqlite:///{tmp_path / 'keys.db'}")))


def test_a_session_survives_its_cookie_and_nothing_else(tmp_path):
    s = sessions(tmp_path)
    now = 1_800_000_000
    session = s.start("millie-app", "system/*.rs", now + 3600, patient="Patient/millie", now=now)
    cookie = s.encode(session)
    assert s.decode(cookie, now=now + 10) == session
    body, _, mac = cookie.partition(".")
    assert s.decode(body + "." + mac[:-2] + "AA", now=now) is None  # forged
    assert s.decode(cookie.replace(".", "x.", 1), now=now) is None
    assert s.decode("", now=now) is None and s.decode(None, now=now) is None
    # Another server's key (another database) does not accept it.
    other = tmp_path / "other"
    other.mkdir()
    assert sessions(other).decode(cookie, now=now) is None


def test_sessions_expire_when_idle_and_at_the_latest_with_their_token(tmp_path):
    s = sessions(tmp_path)
    now = 1_800_000_000
    session = s.start("millie-app", "", now + 10 * 3600, patient="Patient/millie", now=now)
    assert session.ends == now + LONGEST_SECONDS
    assert s.decode(s.encode(session), now=now + IDLE_SECONDS) is None  # idle too long
    kept = s.refreshed(session, now=now + IDLE_SECONDS - 1)
    assert s.decode(s.encode(kept), now=now + IDLE_SECONDS + 60) is not None  # each page pushes it on
    short = s.start("millie-app", "", now + 60, patient="Patient/millie", now=now)
    assert s.decode(s.encode(s.refreshed(short, now=now + 30)), now=now + 61) is None  # the token's end


def test_csrf_tokens_belong_to_one_session(tmp_path):
    s = sessions(tmp_path)
    one = s.start("millie-app", "", 2_000_000_000, patient="Patient/millie")
    two = s.start("millie-app", "", 2_000_000_000, patient="Patient/millie")
    assert s.csrf_ok(one, s.csrf(one))
    assert not s.csrf_ok(two, s.csrf(one))
    assert not s.csrf_ok(one, None) and not s.csrf_ok(one, "")
    nonce = s.pre_nonce()
    assert s.pre_csrf_ok(nonce, s.pre_csrf(nonce))
    assert not s.pre_csrf_ok(s.pre_nonce(), s.pre_csrf(nonce))
