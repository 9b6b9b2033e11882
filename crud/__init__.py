"""CRUD for the platform's entities: validated, audited, forwarded to the backend."""
