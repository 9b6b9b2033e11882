from django.core.validators import MinValueValidator
from django.db import models
from django.utils import timezone

from backend.common.models import TrackedModel, validate_json_object


class ChannelType(models.TextChoices):
    EMAIL = "email"
    SLACK = "slack"
    WEBHOOK = "webhook"
    PAGERDUTY = "pagerduty"


class Operator(models.TextChoices):
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    EQ = "eq"
    NE = "ne"


class Severity(models.TextChoices):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class AlertStatus(models.TextChoices):
    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class Channel(TrackedModel):
    """Where notifications go, and how many per hour it may receive."""

    name = models.CharField(max_length=255, unique=True)
    channel_type = models.CharField(max_length=20, choices=ChannelType.choices)
    configuration = models.JSONField(default=dict, blank=True, validators=[validate_json_object])
    rate_limit_per_hour = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1)])
    is_enabled = models.BooleanField(default=True)

    class Meta(TrackedModel.Meta):
        pass


class AlertRule(TrackedModel):
    """Fires when `metric_name <operator> threshold` holds over the evaluation window."""

    name = models.CharField(max_length=255)
    metric_name = models.CharField(max_length=255)
    operator = models.CharField(max_length=3, choices=Operator.choices)
    threshold = models.FloatField()
    # Seconds.
    evaluation_window = models.PositiveIntegerField(default=300, validators=[MinValueValidator(1)])
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    channels = models.ManyToManyField(Channel, blank=True, related_name="alert_rules")

    class Meta(TrackedModel.Meta):
        pass


class Alert(TrackedModel):
    """One firing of a rule; the fingerprint groups repeats of the same condition."""

    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    fingerprint = models.CharField(max_length=255, blank=True, default="", db_index=True)
    title = models.CharField(max_length=255)
    message = models.TextField(blank=True, default="")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)
    status = models.CharField(
        max_length=15, choices=AlertStatus.choices, default=AlertStatus.FIRING
    )
    fired_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True, default=None)

    class Meta(TrackedModel.Meta):
        pass
