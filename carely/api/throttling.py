from rest_framework.throttling import BaseThrottle


class ApiKeyRateThrottle(BaseThrottle):
    def allow_request(self, request, view):
        return True
