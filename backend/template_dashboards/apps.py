from django.apps import AppConfig


class TemplateDashboardsConfig(AppConfig):
    name = "backend.template_dashboards"
    label = "template_dashboards"
    verbose_name = "Dashboard templates"
    default_auto_field = "django.db.models.BigAutoField"
