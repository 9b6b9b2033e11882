"""Page-number paging that refuses a bad page size instead of quietly clamping it."""

from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


class StrictPageNumberPagination(PageNumberPagination):
    """`{count, next, previous, results}`; `page_size` outside 1..1000 is a 400."""

    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size

        message = f"Must be an integer from 1 to {self.max_page_size}."
        try:
            size = int(raw)
        except ValueError:
            raise ValidationError({self.page_size_query_param: [message]}) from None
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [message]})
        return size
