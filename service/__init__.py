"""Cross-cutting parts of the service: settings, problem details, health, logging."""
