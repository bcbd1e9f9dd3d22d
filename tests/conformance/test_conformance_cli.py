"""`carebridge conformance config` and `carebridge conformance run`, as a user runs them."""

from __future__ import annotations

import json
import tomllib
from xml.etree import ElementTree as ET

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from typer.testing import CliRunner

from carebridge.conformance import register, suites
from carebridge.server import partners
from carebridge.server.auth import Signer
from carebridge.server.cli import app
from carebridge.server.db import Database
from tests.conformance.scripts import case, check, operation, script_of
from tests.conftest import LiveServer, uid

cli = CliRunner()


def test_config_registers_the_partners_and_prints_their_toml(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'carebridge.db'}"
    out = cli.invoke(app, ["conformance", "config", "--database", url, "--base-url", "http://h:8080/fhir"])
    assert out.exit_code == 0, out.output
    config = tomllib.loads(out.stdout)
    assert config["base_url"] == "http://h:8080/fhir" and config["default_role"] == "custodian"
    roles = config["roles"]
    assert set(roles) == {"custodian", "other-trust", "voluntary", "gp", "gp-practitioner", "icr", "person"}
    assert roles["voluntary"]["alliance"] == "Organization/cf-alliance"
    assert roles["person"]["patient"] == "Patient/cf-person-patient"
    db = Database(url)
    try:
        with db.read() as c:
            assert partners.get(c, "cf-voluntary").part_of == "cf-alliance"
            assert partners.get(c, "cf-person").patient == "Patient/cf-person-patient"
        claims = Signer(db).verify(roles["gp-practitioner"]["token"])
        assert (claims.partner_id, claims.practitioner) == ("cf-gp", "Practitioner/cf-gp-practitioner")
    finally:
        db.close()
    again = cli.invoke(app, ["conformance", "config", "--database", url])
    assert again.exit_code == 0  # registering again replaces, it does not fail


def test_run_passes_a_suite_and_writes_three_reports(live: LiveServer, role_tables, tmp_path) -> None:
    config = tmp_path / "carebridge.toml"
    config.write_text(register.toml(live.base, role_tables))
    report = tmp_path / "out"
    out = cli.invoke(
        app, ["conformance", "run", "--config", str(config), "--suite", "core", "--report", str(report)]
    )
    assert out.exit_code == 0, out.output
    assert "PASS core/core-crud" in out.output
    assert {p.name for p in report.iterdir()} == {"report.html", "junit.xml", "testreport.json"}
    assert ET.parse(report / "junit.xml").getroot().get("failures") == "0"
    bundle = json.loads((report / "testreport.json").read_text())
    assert len(bundle["entry"]) == len(suites.scripts("core"))


def test_run_exits_1_when_a_test_fails(live: LiveServer, role_tables, tmp_path) -> None:
    config = tmp_path / "carebridge.toml"
    config.write_text(register.toml(live.base, role_tables))
    script = tmp_path / "teapot.json"
    script.write_text(
        json.dumps(script_of(case("teapot", operation("capabilities"), check(responseCode="418"))))
    )
    out = cli.invoke(
        app,
        [
            "conformance",
            "run",
            "--base-url",
            live.base,
            "--config",
            str(config),
            "--script",
            str(script),
            "--report",
            str(tmp_path / "out"),
        ],
    )
    assert out.exit_code == 1
    assert "FAIL extra/t" in out.output and "expected '418'" in out.output
    assert "FAIL: 1 of 1 tests failed" in (tmp_path / "out" / "report.html").read_text()


def test_run_refuses_a_config_it_cannot_use(tmp_path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[roles.custodian]\norganization = "Organization/x"\n')
    out = cli.invoke(
        app,
        [
            "conformance",
            "run",
            "--base-url",
            "http://127.0.0.1:9/fhir",
            "--config",
            str(config),
            "--report",
            str(tmp_path / "out"),
        ],
    )
    assert out.exit_code == 2 and "needs token" in out.output


def test_a_role_can_act_through_smart_backend_services(live: LiveServer, tmp_path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    partner = uid("cf-smart")
    partners.add(
        live.db,
        partners.Partner(
            id=partner,
            name="SMART client",
            kind="trust",
            scope=partners.DEFAULT_SCOPES["trust"],
            jwks=json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "ES384"}]}),
        ),
    )
    pem = tmp_path / "client.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    config = tmp_path / "smart.toml"
    config.write_text(
        f'base_url = "{live.base}"\n[roles.custodian]\nclient_id = "{partner}"\nprivate_key = "client.pem"\n'
        f'kid = "k1"\norganization = "Organization/{partner}"\n'
    )
    script = tmp_path / "own-org.json"
    own = operation("read", resource="Organization", params=f"/{partner}")
    script.write_text(
        json.dumps(script_of(case("own", own, check(response="okay"), check(resource="Organization"))))
    )
    out = cli.invoke(
        app,
        [
            "conformance",
            "run",
            "--config",
            str(config),
            "--script",
            str(script),
            "--report",
            str(tmp_path / "out"),
        ],
    )
    assert out.exit_code == 0, out.output
