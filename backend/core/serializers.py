from backend.common.serializers import TrackedSerializer
from backend.core.models import Configuration


class ConfigurationSerializer(TrackedSerializer):
    class Meta(TrackedSerializer.Meta):
        model = Configuration
