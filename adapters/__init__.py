"""carebridge.adapters."""
