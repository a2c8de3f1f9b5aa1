"""Sign-up and API-key forms: validation only; the writes are in accounts.services."""

from django import forms
from django.contrib.auth.forms import UserCreationForm

from accounts import selectors


class SignupForm(UserCreationForm):
    """A workspace (tenant) name plus Django's own user-creation checks, password validators included."""

    tenant_name = forms.CharField(
        label="Workspace name",
        max_length=100,
        help_text="Your company or team. Its API keys and transcripts are shared by its members.",
        widget=forms.TextInput(attrs={"autocomplete": "organization", "autofocus": True}),
    )
    email = forms.EmailField(label="Email", required=False, widget=forms.EmailInput(attrs={"autocomplete": "email"}))

    class Meta(UserCreationForm.Meta):
        fields = ("tenant_name", "username", "email")

    def clean_tenant_name(self) -> str:
        name = self.cleaned_data["tenant_name"].strip()
        if not name:
            raise forms.ValidationError("Enter a workspace name.")
        if selectors.tenant_name_taken(name=name):
            raise forms.ValidationError("A workspace with this name already exists; choose another name.")
        return name


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(label="Key name", max_length=100, initial="", strip=True)
