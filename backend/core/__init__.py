"""Service-wide configuration entries."""
