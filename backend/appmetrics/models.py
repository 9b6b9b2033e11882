from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from backend.common.models import TrackedModel, validate_json_object


class Environment(models.TextChoices):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class Tier(models.TextChoices):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Application(TrackedModel):
    """A monitored application instance."""

    name = models.CharField(max_length=255, unique=True)
    # Not `version`: that name is the optimistic-concurrency counter every model carries.
    app_version = models.CharField(max_length=100, blank=True, default="")
    environment = models.CharField(
        max_length=20, choices=Environment.choices, default=Environment.DEVELOPMENT
    )
    host = models.CharField(max_length=255, blank=True, default="")
    port = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=None,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
    )
    team = models.CharField(max_length=255, blank=True, default="")
    tier = models.CharField(max_length=10, choices=Tier.choices, default=Tier.MEDIUM)
    last_heartbeat = models.DateTimeField(null=True, blank=True, default=None)

    class Meta(TrackedModel.Meta):
        pass


class Metric(TrackedModel):
    """One metric point reported by an application."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="metrics")
    metric_name = models.CharField(max_length=255)
    category = models.CharField(max_length=100, blank=True, default="")
    value = models.FloatField()
    unit = models.CharField(max_length=50, blank=True, default="")
    tags = models.JSONField(default=dict, blank=True, validators=[validate_json_object])
    timestamp = models.DateTimeField(default=timezone.now)

    class Meta(TrackedModel.Meta):
        indexes = [models.Index(fields=["metric_name", "timestamp"])]
