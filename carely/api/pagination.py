from rest_framework.pagination import CursorPagination as _Base


class CursorPagination(_Base):
    """Cursor pages: stable under concurrent inserts and no COUNT(*) over a tenant's table."""

    ordering = ("-pk",)
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
