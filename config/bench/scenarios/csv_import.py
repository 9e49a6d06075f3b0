"""import: a CSV of new contacts through the admin's real import (upload with dry run and
preview, then confirm), in a worker process with a time box.

rows/s = rows / (upload and dry run + confirm). The confirm form is read from the
preview page's hidden fields, as the browser sends them.
"""

from __future__ import annotations

import re
import time
import uuid

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from config.bench.context import Context
from config.bench.processes import worker_jobs
from config.bench.setup import ADMIN_USERNAME

HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')
COLUMNS = "email,first_name,last_name,job_title,company,company_domain,country,lifecycle_stage"


def run(ctx: Context) -> None:
    rows = str(ctx.scale.import_rows)
    result = worker_jobs("import_csv", [rows], ctx.scale.budget * 2, ADMIN_USERNAME).get(rows, {})
    if "seconds" not in result or result.get("error"):
        note = result.get("error") or (
            f"cut off after {result['cut']:.0f} s" if "cut" in result else "failed; see the log"
        )
        ctx.add("import", "rows", "rows/s", None, target=">= 5000", passed=False, note=note)
        return
    ctx.add("import", "rows", "rows/s", int(rows) / result["seconds"], target=">= 5000",
            extra={k: result[k] for k in ("preview_s", "confirm_s")})  # fmt: skip


def import_csv(client, rows: int) -> dict:
    """Upload, preview and confirm `rows` new contacts; the timings, or an error."""
    run_id = uuid.uuid4().hex[:6]
    lines = [COLUMNS] + [
        f"import-{run_id}-{i}@example.org,Imported,Person{i},Head of Growth,Import Co {i % 50},"
        f"import{i % 50}-{run_id}.example,{('DE', 'US', 'FR')[i % 3]},new_lead"
        for i in range(rows)
    ]
    upload = {
        "import_file": SimpleUploadedFile("bench.csv", "\n".join(lines).encode(), "text/csv"),
        "format": "0",
        "resource": "0",
        "source": "bench import",
        "lawful_basis": "consent",
    }
    began = time.perf_counter()
    preview = client.post(reverse("admin:crm_contact_import"), upload)
    preview_s = time.perf_counter() - began
    fields = dict(HIDDEN.findall(preview.content.decode()))
    if preview.status_code != 200 or "import_file_name" not in fields:
        return {"error": f"preview failed: HTTP {preview.status_code}"}
    fields.pop("csrfmiddlewaretoken", None)
    began = time.perf_counter()
    done = client.post(reverse("admin:crm_contact_process_import"), fields)
    confirm_s = time.perf_counter() - began
    if done.status_code not in (200, 302):
        return {"error": f"confirm failed: HTTP {done.status_code}"}
    return {"seconds": preview_s + confirm_s, "preview_s": preview_s, "confirm_s": confirm_s}
