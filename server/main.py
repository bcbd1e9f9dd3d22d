"""The ASGI application uvicorn workers import (database URL from CAREBRIDGE_DATABASE)."""

from carebridge.server.app import create_app

app = create_app()
