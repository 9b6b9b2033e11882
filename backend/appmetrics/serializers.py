from backend.appmetrics.models import Application, Metric
from backend.common.serializers import TrackedSerializer


class ApplicationSerializer(TrackedSerializer):
    class Meta(TrackedSerializer.Meta):
        model = Application


class MetricSerializer(TrackedSerializer):
    class Meta(TrackedSerializer.Meta):
        model = Metric
