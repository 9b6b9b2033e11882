from django.apps import AppConfig


class NotificationConfig(AppConfig):
    name = "backend.notification"
    label = "notification"
    verbose_name = "Notification"
    default_auto_field = "django.db.models.BigAutoField"
