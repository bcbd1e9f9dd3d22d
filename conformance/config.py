"""The run configuration (TOML, `--config FILE`): where the server is and how to act as
each role.

    base_url = "http://127.0.0.1:8080/fhir"
    default_role = "custodian"          # used when an operation names no Authorization

    [roles.custodian]
    token = "eyJ..."                    # a bearer token, or SMART Backend Services:
    organization = "Organization/cf-trust"

    [roles.voluntary]
    client_id = "cf-voluntary"
    private_key = "keys/voluntary.pem"  # PEM (RSA -> RS384, EC -> ES384); relative to this file
    token_url = "https://.../token"     # optional: else from .well-known/smart-configuration
    scope = "system/*.rs"               # optional
    organization = "Organization/cf-voluntary"

    [variables]                         # values for TestScript variables, by name
    KnownPatientResourceId = "example"

Every other string in a role table is a fact scripts can use as ${role.NAME.KEY};
${auth.NAME} is the role's Authorization header value.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from carebridge.conformance.engine import Role, Settings
from carebridge.conformance.smart import fetch_token, token_endpoint

SECRET_KEYS = {"token", "private_key", "client_id", "token_url", "scope", "kid"}


class ConfigError(Exception):
    """A config that cannot be used, and why."""


@dataclass
class Config:
    base_url: str | None = None
    default_role: str | None = None
    roles: dict[str, dict] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0
    poll_timeout: float = 60.0
    here: Path = Path(".")


def load(path: Path) -> Config:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return parse(data, here=path.parent)


def parse(data: dict, here: Path = Path(".")) -> Config:
    roles = data.get("roles") or {}
    if not isinstance(roles, dict) or not all(isinstance(v, dict) for v in roles.values()):
        raise ConfigError("[roles.NAME] must be tables")
    for name, role in roles.items():
        if not role.get("token") and not (role.get("client_id") and role.get("private_key")):
            raise ConfigError(f'[roles.{name}] needs token = "..." or client_id and private_key')
    return Config(
        base_url=data.get("base_url"),
        default_role=data.get("default_role") or ("custodian" if "custodian" in roles else None),
        roles=roles,
        variables={k: str(v) for k, v in (data.get("variables") or {}).items()},
        timeout=float(data.get("timeout", 30)),
        poll_timeout=float(data.get("poll_timeout", 60)),
        here=here,
    )


def settings(config: Config, base_url: str, *, fixture_dirs: list[Path] | None = None) -> Settings:
    """Engine settings, with a token in hand for every role (SMART ones fetched now)."""
    roles: dict[str, Role] = {}
    with httpx.Client(timeout=config.timeout) as client:
        endpoint: str | None = None
        for name, table in config.roles.items():
            token = table.get("token")
            if not token:
                token_url = table.get("token_url")
                if not token_url:
                    endpoint = endpoint or token_endpoint(client, base_url)
                    token_url = endpoint
                key_path = Path(table["private_key"])
                if not key_path.is_absolute():
                    key_path = config.here / key_path
                token = fetch_token(
                    client,
                    client_id=table["client_id"],
                    private_key_pem=key_path.read_bytes(),
                    token_url=token_url,
                    scope=table.get("scope"),
                    kid=table.get("kid"),
                )
            values = {k: str(v) for k, v in table.items() if k not in SECRET_KEYS and not isinstance(v, dict)}
            roles[name] = Role(name, f"Bearer {token}", values)
    return Settings(
        base_url=base_url,
        roles=roles,
        default_role=config.default_role,
        variables=dict(config.variables),
        fixture_dirs=list(fixture_dirs or []),
        timeout=config.timeout,
        poll_timeout=config.poll_timeout,
    )
