from rest_framework.pagination import CursorPagination as _Base


class CursorPagination(_Base):
    ordering = "-pk"
