"""Monitored applications and the metric points they report."""
