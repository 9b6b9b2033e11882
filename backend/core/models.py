from django.db import models

from backend.common.models import TrackedModel


class Configuration(TrackedModel):
    """One named setting; `is_sensitive` tells readers to mask the value."""

    key = models.CharField(max_length=255, unique=True)
    value = models.JSONField(null=True, blank=True, default=None)
    description = models.TextField(blank=True, default="")
    is_sensitive = models.BooleanField(default=False)

    class Meta(TrackedModel.Meta):
        pass
