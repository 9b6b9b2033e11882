"""Delivery channels, alert rules and the alerts they fire."""
