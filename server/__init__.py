"""carebridge.server."""
