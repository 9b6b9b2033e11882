from backend.appmetrics.serializers import ApplicationSerializer, MetricSerializer
from backend.common.routing import app_urls

urlpatterns = app_urls(
    "appmetrics",
    {
        "applications": ApplicationSerializer,
        "metrics": MetricSerializer,
    },
)
