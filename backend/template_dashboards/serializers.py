from backend.common.serializers import TrackedSerializer
from backend.template_dashboards.models import Dashboard, Template


class TemplateSerializer(TrackedSerializer):
    class Meta(TrackedSerializer.Meta):
        model = Template


class DashboardSerializer(TrackedSerializer):
    class Meta(TrackedSerializer.Meta):
        model = Dashboard
