"""Forms behind the console's daily actions: note, call, pause, assign."""

import datetime as dt

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import Activity

AGENT_GROUPS = ("Collections agent", "Collections manager")


def agents():
    """Active users who can be given customers."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=AGENT_GROUPS)
        .distinct()
        .order_by("username")
    )


class NoteForm(forms.Form):
    text = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 4}))


class CallForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Outcome"), choices=Activity.CallOutcome.choices)
    phone = forms.CharField(label=_("Number called"), required=False, max_length=32)
    text = forms.CharField(
        label=_("What was said"), required=False, widget=forms.Textarea(attrs={"rows": 4})
    )


class PauseForm(forms.Form):
    until = forms.DateField(
        label=_("Pause until (inclusive)"), widget=forms.DateInput(attrs={"type": "date"})
    )
    reason = forms.CharField(label=_("Reason"), max_length=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        default = timezone.localdate() + dt.timedelta(days=settings.AGENT_MAX_PAUSE_DAYS)
        self.fields["until"].initial = default


class AssignForm(forms.Form):
    agent = forms.ModelChoiceField(
        label=_("Agent"),
        queryset=get_user_model().objects.none(),
        required=False,
        empty_label=_("— nobody (unassigned) —"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = agents()


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=200)
