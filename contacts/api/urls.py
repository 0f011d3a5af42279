from rest_framework.routers import SimpleRouter

from contacts.api.views import ContactViewSet, TagViewSet

router = SimpleRouter()
router.register("contacts", ContactViewSet, basename="contact")
router.register("tags", TagViewSet, basename="tag")

urlpatterns = router.urls
