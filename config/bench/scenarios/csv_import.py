"""import: a CSV of new contacts through the admin's real import (upload, preview, confirm).

rows/s = rows / (upload and dry run + confirm). The confirm form is read from the
preview page's hidden fields, as the browser would send them.
"""

from __future__ import annotations

import re
import time
import uuid

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from config.bench.context import Context
from config.bench.people import admin_client
from config.bench.scenarios.common import per_second

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
COLUMNS = "email,first_name,last_name,job_title,company,company_domain,country,lifecycle_stage"


def run(ctx: Context) -> None:
    rows = ctx.scale.import_rows
    run_id = uuid.uuid4().hex[:6]
    lines = [COLUMNS] + [
        f"import-{run_id}-{i}@example.org,Imported,Person{i},Head of Growth,Import Co {i % 50},"
        f"import{i % 50}-{run_id}.example,{('DE', 'US', 'FR')[i % 3]},new_lead"
        for i in range(rows)
    ]
    client = admin_client()
    upload = {
        "import_file": SimpleUploadedFile("bench.csv", "\n".join(lines).encode(), "text/csv"),
        "format": "0",
        "resource": "0",
        "source": "bench import",
        "lawful_basis": "consent",
    }
    began = time.perf_counter()
    preview = client.post(reverse("admin:crm_contact_import"), upload)
    dry_run = time.perf_counter() - began
    fields = dict(HIDDEN.findall(preview.content.decode()))
    if preview.status_code != 200 or "import_file_name" not in fields:
        ctx.add(
            "import", "rows", "rows/s", None, note=f"preview failed: HTTP {preview.status_code}"
        )
        return
    fields.pop("csrfmiddlewaretoken", None)
    began = time.perf_counter()
    done = client.post(reverse("admin:crm_contact_process_import"), fields)
    confirm = time.perf_counter() - began
    ok = done.status_code in (200, 302)
    ctx.add(
        "import",
        "rows",
        "rows/s",
        per_second(rows, dry_run + confirm) if ok else None,
        target=">= 5000",
        note="" if ok else f"confirm failed: HTTP {done.status_code}",
        extra={"rows": rows, "preview_s": round(dry_run, 2), "confirm_s": round(confirm, 2)},
    )
