from backend.common.serializers import TrackedSerializer
from backend.notification.models import Alert, AlertRule, Channel


class ChannelSerializer(TrackedSerializer):
    class Meta(TrackedSerializer.Meta):
        model = Channel


class AlertRuleSerializer(TrackedSerializer):
    class Meta(TrackedSerializer.Meta):
        model = AlertRule


class AlertSerializer(TrackedSerializer):
    class Meta(TrackedSerializer.Meta):
        model = Alert
