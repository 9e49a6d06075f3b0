"""Companies and the reference data teams configure: lifecycle stages and tags."""

from django import forms
from django.contrib import admin

from crm.admin.base import BigTableMixin, OwnerFieldMixin
from crm.admin.filters import CountryFilter
from crm.models import Company, LifecycleStage, Tag


class CompanyAdminForm(forms.ModelForm):
    class Meta:
        model = Company
        fields = ("name", "domain", "size", "industry", "country", "owner")

    def clean_domain(self):
        # Say which company has the domain, instead of the database's constraint name.
        domain = self.cleaned_data["domain"].strip().lower().removeprefix("www.")
        if domain:
            others = Company.objects.filter(domain__iexact=domain).exclude(pk=self.instance.pk)
            other = others.first()
            if other is not None:
                raise forms.ValidationError(f"{other} already has the domain {domain}.")
        return domain


@admin.register(Company)
class CompanyAdmin(OwnerFieldMixin, BigTableMixin, admin.ModelAdmin):
    form = CompanyAdminForm
    list_display = ("name", "domain", "country", "size", "industry", "owner")
    list_filter = ("size", CountryFilter, "owner")
    search_fields = ("name", "domain")
    ordering = ("name",)
    list_select_related = ("owner",)
    autocomplete_fields = ("owner",)


@admin.register(LifecycleStage)
class LifecycleStageAdmin(admin.ModelAdmin):
    list_display = ("name", "key", "position", "is_customer")
    list_filter = ("is_customer",)
    search_fields = ("key", "name")
    ordering = ("position", "key")
    list_select_related = False


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name",)
    list_filter = ()  # a tag is only its name: search it instead
    search_fields = ("name",)
    ordering = ("name",)
    list_select_related = False
