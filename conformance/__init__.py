"""carebridge.conformance."""
