from rest_framework.permissions import BasePermission


class HasScope(BasePermission):
    pass
