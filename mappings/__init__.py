"""carebridge.mappings."""
