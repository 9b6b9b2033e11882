from backend.common.routing import app_urls
from backend.template_dashboards.serializers import DashboardSerializer, TemplateSerializer

urlpatterns = app_urls(
    "template_dashboards",
    {
        "templates": TemplateSerializer,
        "dashboards": DashboardSerializer,
    },
)
