from django.core.validators import MinValueValidator
from django.db import models

from backend.common.models import TrackedModel, validate_json_object


class SourceType(models.TextChoices):
    PROMETHEUS = "prometheus"
    OTLP = "otlp"
    DATABASE = "database"
    HTTP = "http"
    CUSTOM = "custom"


class ReportFormat(models.TextChoices):
    PDF = "pdf"
    CSV = "csv"
    JSON = "json"


class DataSource(TrackedModel):
    """A place telemetry is pulled from, and how often."""

    name = models.CharField(max_length=255, unique=True)
    source_type = models.CharField(max_length=20, choices=SourceType.choices)
    connection_config = models.JSONField(
        default=dict, blank=True, validators=[validate_json_object]
    )
    # Seconds; faster polling than this would hammer the source.
    sync_frequency = models.PositiveIntegerField(default=60, validators=[MinValueValidator(10)])

    class Meta(TrackedModel.Meta):
        pass


class Report(TrackedModel):
    """A saved query rendered on a schedule (cron-like string) or on demand."""

    title = models.CharField(max_length=255)
    description = models.TextField(blank=True, default="")
    query = models.JSONField(default=dict, blank=True, validators=[validate_json_object])
    schedule = models.CharField(max_length=255, blank=True, default="")
    format = models.CharField(
        max_length=10, choices=ReportFormat.choices, default=ReportFormat.JSON
    )

    class Meta(TrackedModel.Meta):
        pass
