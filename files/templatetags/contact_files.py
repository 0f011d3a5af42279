from django import template

from files.services import max_bytes

register = template.Library()


@register.simple_tag
def contact_file_limit() -> str:
    """The upload limit in megabytes, for the hint next to the file field."""
    return f"{max_bytes() / (1024 * 1024):.0f} MB"
