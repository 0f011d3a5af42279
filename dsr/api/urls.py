from rest_framework.routers import SimpleRouter

from dsr.api.views import DsrViewSet

router = SimpleRouter()
router.register("dsr", DsrViewSet, basename="dsr")

urlpatterns = router.urls
