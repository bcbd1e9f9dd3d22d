"""Identity (CONTRACTS.md section 2): the partner registry and its command line, tokens
from `carebridge token`, and SMART Backend Services at POST /fhir/token."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from typer.testing import CliRunner

from carebridge.server import partners, store
from carebridge.server.auth import Signer
from carebridge.server.cli import app
from carebridge.server.db import Database
from tests.conftest import LiveServer, uid
from tests.server.conftest import Person
from tests.server.fhir_checks import ODS_SYSTEM, outcome

runner = CliRunner()
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, (result.exit_code, result.output)
    return " ".join(result.output.split()) if args[0] != "token" else result.output


def cli_fails(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code != 0, result.output
    return " ".join(result.output.split())  # rich wraps long lines


# -- the registry and its command line, on an empty database ------------------------------------
def test_partner_add_registers_a_trust_as_an_organization_with_its_ods_code(database: Database):
    out = cli(
        "partner",
        "add",
        "--id",
        "awp",
        "--name",
        "AWP",
        "--kind",
        "trust",
        "--ods",
        "RVN",
        "--database",
        database.url,
    )
    assert "system/*.cruds" in out
    with database.read() as c:
        org = store.current(c, "Organization", "awp").resource()
        assert partners.get(c, "awp").scope == "system/*.cruds"
    assert org["name"] == "AWP"
    assert org["identifier"] == [{"system": ODS_SYSTEM, "value": "RVN"}]
    assert org["active"] is True


def test_a_voluntary_organisation_is_part_of_its_alliance(database: Database):
    url = database.url
    cli("partner", "add", "--id", "alliance", "--name", "Alliance", "--kind", "voluntary", "--database", url)
    cli(
        "partner",
        "add",
        "--id",
        "mind",
        "--name",
        "Bath Mind",
        "--kind",
        "voluntary",
        "--part-of",
        "alliance",
        "--database",
        url,
    )
    with database.read() as c:
        org = store.current(c, "Organization", "mind").resource()
        mind = partners.get(c, "mind")
    assert org["partOf"] == {"reference": "Organization/alliance"}
    assert "identifier" not in org
    assert mind.scope == "system/*.rs system/Subscription.cruds"


def test_part_of_an_organisation_that_does_not_exist_is_refused(database: Database):
    out = cli_fails(
        "partner",
        "add",
        "--id",
        "x",
        "--name",
        "X",
        "--kind",
        "gp",
        "--part-of",
        "nowhere",
        "--database",
        database.url,
    )
    assert "no such Organization" in out
    with database.read() as c:
        assert partners.get(c, "x") is None


def test_a_person_partner_is_bound_to_one_patient(database: Database):
    url = database.url
    out = cli_fails("partner", "add", "--id", "app", "--name", "App", "--kind", "person", "--database", url)
    assert "--patient Patient/ID" in out
    cli(
        "partner",
        "add",
        "--id",
        "app",
        "--name",
        "App",
        "--kind",
        "person",
        "--patient",
        "Patient/millie",
        "--database",
        url,
    )
    with database.read() as c:
        assert partners.get(c, "app").patient == "Patient/millie"
        assert store.current(c, "Organization", "app") is None  # a person is no Organization


def test_an_unknown_kind_is_refused(database: Database):
    assert "kind must be one of" in cli_fails(
        "partner", "add", "--id", "x", "--name", "X", "--kind", "insurer", "--database", database.url
    )


def test_partner_list_shows_every_partner(database: Database):
    url = database.url
    cli(
        "partner",
        "add",
        "--id",
        "gp1",
        "--name",
        "Keynsham",
        "--kind",
        "gp",
        "--ods",
        "L81052",
        "--database",
        url,
    )
    cli(
        "partner",
        "add",
        "--id",
        "icr1",
        "--name",
        "ICR",
        "--kind",
        "icr",
        "--scope",
        "system/CarePlan.rs",
        "--database",
        url,
    )
    out = cli("partner", "list", "--database", url)
    assert "gp1" in out and "L81052" in out and "icr1" in out


def test_partner_remove_takes_a_partner_out_and_says_so_when_there_is_none(database: Database):
    url = database.url
    cli("partner", "add", "--id", "gone", "--name", "Gone", "--kind", "gp", "--database", url)
    assert "removed gone" in cli("partner", "remove", "gone", "--database", url)
    with database.read() as c:
        assert partners.get(c, "gone") is None
    assert "no partner gone" in cli_fails("partner", "remove", "gone", "--database", url)


def test_carebridge_token_prints_a_token_with_the_partners_scopes(database: Database):
    url = database.url
    cli("partner", "add", "--id", "trust1", "--name", "Trust", "--kind", "trust", "--database", url)
    token = cli("token", "--partner", "trust1", "--database", url).strip()
    claims = Signer(database).verify(token)
    assert claims.partner_id == "trust1"
    assert claims.scope == "system/*.cruds"
    narrow = cli(
        "token",
        "--partner",
        "trust1",
        "--scope",
        "system/CarePlan.rs",
        "--practitioner",
        "Practitioner/sam-patel",
        "--ttl",
        "60",
        "--database",
        url,
    )
    claims = Signer(database).verify(narrow.strip())
    assert claims.scope == "system/CarePlan.rs"
    assert claims.practitioner == "Practitioner/sam-patel"
    assert claims.expires <= time.time() + 61


def test_carebridge_token_for_an_unknown_partner_fails(database: Database):
    assert "no partner nobody" in cli_fails("token", "--partner", "nobody", "--database", database.url)


# -- the registry over HTTP ------------------------------------------------------------------------
def test_each_demo_partner_is_an_organization_with_its_ods_code_and_parent(custodian):
    awp = custodian.get("/Organization/awp").json()
    assert {"system": ODS_SYSTEM, "value": "RVN"} in awp["identifier"]
    assert custodian.get("/Organization/awp-bath-cmht").json()["partOf"] == {"reference": "Organization/awp"}
    assert custodian.get("/Organization/bath-mind").json()["partOf"] == {
        "reference": "Organization/banes-voluntary-alliance"
    }
    found = custodian.get("/Organization", params={"identifier": f"{ODS_SYSTEM}|L81052"}).json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["keynsham-gp"]


def test_a_token_from_the_command_line_works_until_its_partner_is_removed(live: LiveServer, millie: Person):
    pid = uid("trust")
    url = live.db.url
    cli(
        "partner",
        "add",
        "--id",
        pid,
        "--name",
        "A new team",
        "--kind",
        "trust",
        "--part-of",
        "awp-bath-cmht",
        "--database",
        url,
    )
    token = cli("token", "--partner", pid, "--database", url).strip()
    with httpx.Client(base_url=live.base, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get(f"/Organization/{pid}").json()["partOf"] == {"reference": "Organization/awp-bath-cmht"}
        # a team inside Millie's custodian is not its parent: it does not hold her record
        outcome(c.get(f"/CarePlan/{millie.plan}"), 404)
        cli("partner", "remove", pid, "--database", url)
        outcome(c.get(f"/Organization/{pid}"), 401, "no longer registered")
        outcome(c.get("/CarePlan", params={"patient": "millie"}), 401)


# -- SMART Backend Services -------------------------------------------------------------------------
class Keys:
    """A partner's RS384 and ES384 key pairs and the JWKS it registers."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP384R1())

    def jwks(self) -> dict:
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key()))
        rsa_jwk.update(kid="rsa-1", alg="RS384", use="sig")
        ec_jwk.update(kid="ec-1", alg="ES384", use="sig")
        return {"keys": [rsa_jwk, ec_jwk]}

    def assertion(self, client_id: str, aud: str, *, alg: str = "RS384", **override) -> str:
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": aud,
            "exp": int(time.time()) + 120,
            "jti": uuid.uuid4().hex,
            **override,
        }
        key, kid = (self.rsa, "rsa-1") if alg == "RS384" else (self.ec, "ec-1")
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture
def backend_partner(live: LiveServer, keys: Keys, tmp_path: Path) -> str:
    """A new voluntary organisation in the B&NES alliance, registered with its JWKS."""
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(keys.jwks()))
    pid = uid("vcs")
    cli(
        "partner", "add", "--id", pid, "--name", "Keynsham Wellbeing Café", "--kind", "voluntary",
        "--part-of", "banes-voluntary-alliance", "--jwks-file", str(jwks_file), "--database", live.db.url,
    )  # fmt: skip
    return pid


def ask_for_token(live: LiveServer, assertion: str, scope: str | None = None, **form: str) -> httpx.Response:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    if scope:
        data["scope"] = scope
    data.update(form)
    return httpx.post(f"{live.base}/token", data=data)


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_a_partner_gets_a_token_with_a_signed_assertion_and_sees_what_consent_allows(
    live: LiveServer, keys: Keys, backend_partner: str, alg: str, millie: Person
):
    r = ask_for_token(live, keys.assertion(backend_partner, f"{live.base}/token", alg=alg))
    assert r.status_code == 200, r.text
    grant = r.json()
    assert grant["token_type"] == "bearer"
    assert grant["expires_in"] > 0
    assert grant["scope"] == "system/*.rs system/Subscription.cruds"
    assert r.headers["Cache-Control"] == "no-store"
    headers = {"Authorization": f"Bearer {grant['access_token']}"}
    with httpx.Client(base_url=live.base, headers=headers) as c:
        # Millie lets the alliance's voluntary organisations see her plan, but not her risks.
        assert c.get("/CarePlan/millie-about-me").status_code == 200
        assert c.get("/RiskAssessment/millie-risk").status_code == 404
        outcome(c.post("/CarePlan", json={"resourceType": "CarePlan"}), 403)


def test_an_assertion_can_be_used_only_once(live: LiveServer, keys: Keys, backend_partner: str):
    assertion = keys.assertion(backend_partner, f"{live.base}/token")
    assert ask_for_token(live, assertion).status_code == 200
    again = ask_for_token(live, assertion)
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"
    assert "already used" in again.json()["error_description"]


def test_an_assertion_for_another_audience_is_refused(live: LiveServer, keys: Keys, backend_partner: str):
    r = ask_for_token(live, keys.assertion(backend_partner, "https://elsewhere.example/token"))
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"
    assert "audience" in r.json()["error_description"].lower()


@pytest.mark.parametrize(
    "override, words",
    [
        ({"exp": int(time.time()) - 60}, "expired"),
        ({"exp": int(time.time()) + 3600}, "five minutes"),
        ({"sub": "someone-else"}, "iss and sub"),
    ],
    ids=["expired", "too-long", "sub-is-not-iss"],
)
def test_an_assertion_with_bad_claims_is_refused(live, keys: Keys, backend_partner: str, override, words):
    r = ask_for_token(live, keys.assertion(backend_partner, f"{live.base}/token", **override))
    assert r.status_code == 401
    assert words in r.json()["error_description"].lower()


def test_an_assertion_signed_by_a_key_not_registered_is_refused(live: LiveServer, backend_partner: str):
    stranger = Keys()
    r = ask_for_token(live, stranger.assertion(backend_partner, f"{live.base}/token"))
    assert r.status_code == 401
    assert r.json()["error"] == "invalid_client"


def test_a_partner_without_a_registered_key_cannot_use_backend_services(live: LiveServer, keys: Keys):
    r = ask_for_token(live, keys.assertion("bath-mind", f"{live.base}/token"))
    assert r.status_code == 401
    assert "--jwks-file" in r.json()["error_description"]


def test_a_symmetric_signature_is_refused(live: LiveServer, backend_partner: str):
    claims = {
        "iss": backend_partner,
        "sub": backend_partner,
        "aud": f"{live.base}/token",
        "exp": int(time.time()) + 60,
        "jti": "x",
    }
    r = ask_for_token(live, jwt.encode(claims, "a-shared-secret-of-at-least-32-bytes!!", algorithm="HS256"))
    assert r.status_code == 401
    assert "RS384 or ES384" in r.json()["error_description"]


def test_a_token_can_be_narrowed_to_fewer_scopes(live: LiveServer, keys: Keys, backend_partner: str):
    r = ask_for_token(live, keys.assertion(backend_partner, f"{live.base}/token"), scope="system/CarePlan.rs")
    assert r.status_code == 200, r.text
    assert r.json()["scope"] == "system/CarePlan.rs"
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    with httpx.Client(base_url=live.base, headers=headers) as c:
        assert c.get("/CarePlan/millie-about-me").status_code == 200
        outcome(c.get("/Patient/millie"), 403, "system/Patient.r")


def test_scopes_beyond_the_partners_are_refused(live: LiveServer, keys: Keys, backend_partner: str):
    r = ask_for_token(live, keys.assertion(backend_partner, f"{live.base}/token"), scope="system/*.cruds")
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_scope"


def test_only_the_client_credentials_grant_is_offered(live: LiveServer, keys: Keys, backend_partner: str):
    r = ask_for_token(live, keys.assertion(backend_partner, f"{live.base}/token"), grant_type="password")
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"
    missing = httpx.post(f"{live.base}/token", data={"grant_type": "client_credentials"})
    assert missing.status_code == 400
    assert missing.json()["error"] == "invalid_request"


def test_a_backend_token_stops_working_when_the_partner_is_removed(
    live: LiveServer, keys: Keys, backend_partner: str
):
    grant = ask_for_token(live, keys.assertion(backend_partner, f"{live.base}/token")).json()
    headers = {"Authorization": f"Bearer {grant['access_token']}"}
    with httpx.Client(base_url=live.base, headers=headers) as c:
        assert c.get("/CarePlan/millie-about-me").status_code == 200
        cli("partner", "remove", backend_partner, "--database", live.db.url)
        outcome(c.get("/CarePlan/millie-about-me"), 401)
    r = ask_for_token(live, keys.assertion(backend_partner, f"{live.base}/token"))
    assert r.status_code == 401
