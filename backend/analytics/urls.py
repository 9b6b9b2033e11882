from backend.analytics.serializers import DataSourceSerializer, ReportSerializer
from backend.common.routing import app_urls

urlpatterns = app_urls(
    "analytics",
    {
        "data-sources": DataSourceSerializer,
        "reports": ReportSerializer,
    },
)
