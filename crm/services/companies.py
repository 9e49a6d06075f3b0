"""Companies."""

from django.db import transaction

from crm.models import Company


@transaction.atomic
def company_upsert(*, name: str = "", domain: str = "", **fields) -> Company:
    """Find the company by domain (or by exact name when there is no domain), else create it.

    Given non-empty fields overwrite the stored ones.
    """
    domain = domain.strip().lower().removeprefix("www.")
    if domain:
        company = Company.objects.select_for_update().filter(domain__iexact=domain).first()
    else:
        company = Company.objects.select_for_update().filter(name=name, domain="").first()
    if company is None:
        company = Company(name=name or domain, domain=domain)
    elif name:
        company.name = name
    for field_name, value in fields.items():
        if value not in (None, ""):
            setattr(company, field_name, value)
    company.full_clean(exclude=["owner"])
    company.save()
    return company
