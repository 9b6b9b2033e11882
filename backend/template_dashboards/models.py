from django.db import models

from backend.common.models import TrackedModel, validate_json_list, validate_json_object


class Template(TrackedModel):
    """A reusable dashboard layout with its widgets."""

    name = models.CharField(max_length=255, unique=True)
    description = models.TextField(blank=True, default="")
    category = models.CharField(max_length=100, blank=True, default="")
    layout = models.JSONField(default=dict, blank=True, validators=[validate_json_object])
    widgets = models.JSONField(default=list, blank=True, validators=[validate_json_list])
    tags = models.JSONField(default=list, blank=True, validators=[validate_json_list])
    is_public = models.BooleanField(default=False)

    class Meta(TrackedModel.Meta):
        pass


class Dashboard(TrackedModel):
    """A dashboard, optionally built from a template."""

    name = models.CharField(max_length=255)
    template = models.ForeignKey(
        Template, null=True, blank=True, on_delete=models.SET_NULL, related_name="dashboards"
    )
    configuration = models.JSONField(default=dict, blank=True, validators=[validate_json_object])
    owner = models.CharField(max_length=255, blank=True, default="")
    is_shared = models.BooleanField(default=False)

    class Meta(TrackedModel.Meta):
        pass
