from backend.analytics.models import DataSource, Report
from backend.common.serializers import TrackedSerializer


class DataSourceSerializer(TrackedSerializer):
    class Meta(TrackedSerializer.Meta):
        model = DataSource


class ReportSerializer(TrackedSerializer):
    class Meta(TrackedSerializer.Meta):
        model = Report
