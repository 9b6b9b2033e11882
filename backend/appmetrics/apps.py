from django.apps import AppConfig


class AppmetricsConfig(AppConfig):
    name = "backend.appmetrics"
    label = "appmetrics"
    verbose_name = "Application metrics"
    default_auto_field = "django.db.models.BigAutoField"
