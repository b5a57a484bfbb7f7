"""A fix for the admin's autocomplete widgets: an impossible id must not end in a 500.

Re-rendering a form whose autocomplete field was posted with a value its model cannot
hold ("abc" or "NaN" for an integer key) makes Django's AutocompleteMixin.optgroups
filter the related table by that value, which raises ValueError while the page renders
(the same defect other autocomplete packages fixed, e.g. django-autocomplete-light
PR #1321). The form has already said the value is invalid; the widget only needs to
leave it out of the choices it shows. Installed once, from AccountsConfig.ready().
"""

from django.contrib.admin.widgets import AutocompleteMixin
from django.core.exceptions import ValidationError

_optgroups = AutocompleteMixin.optgroups


def _possible(widget, values) -> list:
    remote = widget.field.remote_field
    options = remote.model._meta
    # As Django's optgroups finds it: a many-to-many relation has no field_name.
    target = options.get_field(getattr(remote, "field_name", options.pk.attname))
    kept = []
    for value in values:
        try:
            target.get_prep_value(target.to_python(value))
        except (ValidationError, ValueError, TypeError, OverflowError):
            continue
        kept.append(value)
    return kept


def optgroups(self, name, value, attr=None):
    return _optgroups(self, name, _possible(self, value), attr)


def install() -> None:
    AutocompleteMixin.optgroups = optgroups
