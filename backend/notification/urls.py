from backend.common.routing import app_urls
from backend.notification.serializers import AlertRuleSerializer, AlertSerializer, ChannelSerializer

urlpatterns = app_urls(
    "notification",
    {
        "channels": ChannelSerializer,
        "alert-rules": AlertRuleSerializer,
        "alerts": AlertSerializer,
    },
)
