"""The state of one TestScript run: fixtures, responses so far, variables, defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from carebridge.conformance.exchange import Exchange
from carebridge.conformance.fixtures import Fixture
from carebridge.conformance.variables import Variables


@dataclass
class RunContext:
    base_url: str
    client: httpx.Client
    script: dict
    fixtures: dict[str, Fixture]
    default_auth: str | None = None
    poll_timeout: float = 60.0
    responses: dict[str, Exchange] = field(default_factory=dict)
    requests: dict[str, Exchange] = field(default_factory=dict)
    last: Exchange | None = None
    variables: Variables | None = None

    def source(self, source_id: str | None) -> Fixture | Exchange | None:
        """A fixture by id (static, response or request), or the last exchange."""
        if source_id is None:
            return self.last
        for table in (self.responses, self.fixtures, self.requests):
            if source_id in table:
                return table[source_id]
        return None

    @property
    def vars(self) -> Variables:
        assert self.variables is not None
        return self.variables
