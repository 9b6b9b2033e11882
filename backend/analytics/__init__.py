"""Where telemetry comes from (data sources) and what is reported on it (reports)."""
