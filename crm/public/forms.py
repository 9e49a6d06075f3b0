"""Forms of the public pages; plain Django forms so errors render accessibly."""

from django import forms

from crm.models import ConsentTopic, time_zone_names


def inferred_time_zone(value: str | None) -> str:
    """A browser-reported IANA time zone name if it is a real one, else ""."""
    value = (value or "").strip()
    return value if value in time_zone_names() else ""


class PreferencesForm(forms.Form):
    topics = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Send me"
    )
    pause = forms.BooleanField(required=False, label="Pause all marketing email for 30 days")
    unsubscribe_all = forms.BooleanField(
        required=False, label="Unsubscribe from all marketing email"
    )

    def __init__(self, *args, topics: list[ConsentTopic], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["topics"].choices = [(topic.key, topic.name) for topic in topics]


class SignUpForm(forms.Form):
    email = forms.EmailField(max_length=254, label="Email address")
    first_name = forms.CharField(max_length=100, required=False, label="First name (optional)")
    topic = forms.SlugField(max_length=50, widget=forms.HiddenInput)
    #: A honeypot: people never see it, form-filling bots do. Filled in → nothing is sent.
    website = forms.CharField(required=False, widget=forms.HiddenInput)
    #: Filled by crm/static/crm/timezone.js from Intl.DateTimeFormat(); people never see it.
    time_zone = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_time_zone(self) -> str:
        # Inferred, not typed: an unknown value is dropped, never an error for the person.
        return inferred_time_zone(self.cleaned_data.get("time_zone"))

    def clean_topic(self) -> ConsentTopic:
        topic = ConsentTopic.objects.filter(key=self.cleaned_data["topic"], is_active=True).first()
        if topic is None:
            raise forms.ValidationError("This sign-up form is not available any more.")
        return topic
