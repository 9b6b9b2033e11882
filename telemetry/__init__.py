"""The telemetry pipeline: collector -> processor -> enricher -> correlator -> analyzer.

Agents post points to `routes`; the `collector` validates, deduplicates and admits them into a
bounded queue (`backpressure`); the `pipeline` worker drains that queue in batches through the
remaining stages, one module each. Dashboards read the findings back through `routes`.
"""
