"""Dashboard templates and the dashboards built from them."""
