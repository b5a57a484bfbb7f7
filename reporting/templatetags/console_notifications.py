"""{% console_notifications %}: the admin index's box of what waits for the user."""

from django import template

from reporting import notifications

register = template.Library()


@register.inclusion_tag("admin/console_notifications.html", takes_context=True)
def console_notifications(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    return {"notifications": notifications.for_user(user) if user is not None else []}
