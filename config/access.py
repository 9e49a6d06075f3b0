"""Who may do what in the admin and the API: the one source of docs/admin.md's tables.

tests/security/test_role_matrix.py asks the running site, role by role and over HTTP,
what every admin page, action and API route allows, and compares it with this module;
the same test checks that docs/admin.md contains `render_markdown()`'s output, so the
documented roles, the permissions granted by migrations and the admin's own overrides
cannot drift apart. To change a role: change the migration or the ModelAdmin, change
this module, then paste `python -m config.access` into docs/admin.md.

Letters: v view (list and open), a add, c change, d delete.
"""

ANONYMOUS = "anonymous"
SALES = "Sales"
MARKETING = "Marketing"
SUCCESS = "Customer success"
SUPERUSER = "superuser"
ROLES = (ANONYMOUS, SALES, MARKETING, SUCCESS, SUPERUSER)
STAFF_ROLES = (SALES, MARKETING, SUCCESS, SUPERUSER)

#: model label → (Sales, Marketing, Customer success, superuser). Anonymous: nothing.
ADMIN_MODELS: dict[str, tuple[str, str, str, str]] = {
    "auth.group": ("", "", "", "vacd"),
    "auth.user": ("", "", "", "vacd"),
    "axes.accessattempt": ("", "", "", "vcd"),
    "axes.accessfailurelog": ("", "", "", "vcd"),
    "axes.accesslog": ("", "", "", "vcd"),
    "crm.activity": ("v", "v", "v", "v"),
    "crm.apikey": ("", "", "", "vac"),
    "crm.company": ("vac", "vac", "vc", "vacd"),
    "crm.consententry": ("v", "va", "v", "va"),
    "crm.consenttext": ("", "va", "", "va"),
    "crm.consenttopic": ("v", "vac", "v", "vacd"),
    "crm.contact": ("vac", "vac", "vc", "vacd"),
    "crm.deal": ("vac", "v", "v", "vacd"),
    "crm.dealstage": ("v", "v", "v", "vacd"),
    "crm.erasurerecord": ("", "", "", "v"),
    "crm.lifecyclestage": ("v", "v", "v", "vacd"),
    "crm.lifecyclestagechange": ("v", "v", "v", "v"),
    "crm.note": ("vac", "va", "vac", "vacd"),
    "crm.segment": ("v", "vacd", "v", "vacd"),
    "crm.suppression": ("v", "va", "v", "va"),
    "crm.suppressionlift": ("v", "v", "v", "v"),
    "crm.tag": ("v", "vacd", "v", "vacd"),
    "crm.task": ("vac", "vac", "vac", "vacd"),
    "django_q.failure": ("", "", "", "vcd"),
    "django_q.ormq": ("", "", "", "vcd"),
    "django_q.schedule": ("", "", "", "vacd"),
    "django_q.success": ("", "", "", "vcd"),
    "predictions.contactprediction": ("v", "v", "v", "v"),
    "predictions.milestonerule": ("v", "vacd", "vacd", "vacd"),
    "predictions.missedmilestone": ("v", "v", "v", "v"),
    "predictions.predictionrun": ("v", "v", "v", "v"),
    "scoring.demoroutingrule": ("v", "vac", "v", "vacd"),
    "scoring.handoff": ("vc", "v", "v", "vc"),
    "scoring.handoffrule": ("v", "vac", "v", "vacd"),
    "scoring.scorechange": ("v", "v", "v", "v"),
    "scoring.scoringrule": ("v", "vac", "v", "vacd"),
    "scoring.territory": ("v", "v", "v", "vacd"),
    "sequences.circuitbreakertrip": ("v", "v", "v", "v"),
    "sequences.emailtemplate": ("v", "vacd", "v", "vacd"),
    "sequences.enrollment": ("v", "v", "v", "v"),
    "sequences.enrollmentevent": ("v", "v", "v", "v"),
    "sequences.espevent": ("", "v", "", "v"),
    "sequences.outboundmessage": ("v", "v", "v", "v"),
    "sequences.sequence": ("v", "vacd", "v", "vacd"),
    "sequences.sequenceversion": ("v", "v", "v", "v"),
    "revenue.sequenceresult": ("v", "v", "v", "v"),
}

#: (model label, action) → the roles offered the action in the changelist.
ADMIN_ACTIONS: dict[tuple[str, str], tuple[str, ...]] = {
    ("auth.group", "delete_selected"): ("superuser",),
    ("auth.user", "delete_selected"): ("superuser",),
    ("axes.accessattempt", "cleanup_expired_attempts"): ("superuser",),
    ("axes.accessattempt", "delete_selected"): ("superuser",),
    ("axes.accessfailurelog", "delete_selected"): ("superuser",),
    ("axes.accesslog", "delete_selected"): ("superuser",),
    ("crm.apikey", "revoke"): ("superuser",),
    ("crm.company", "delete_selected"): ("superuser",),
    ("crm.consenttopic", "delete_selected"): ("superuser",),
    ("crm.contact", "delete_selected"): ("superuser",),
    ("crm.contact", "erase_contacts"): ("superuser",),
    ("crm.contact", "export_contact_data"): ("Sales", "Marketing", "Customer success", "superuser"),
    ("crm.contact", "unsubscribe_contacts_from_all"): ("Marketing", "superuser"),
    ("crm.deal", "delete_selected"): ("superuser",),
    ("crm.dealstage", "delete_selected"): ("superuser",),
    ("crm.lifecyclestage", "delete_selected"): ("superuser",),
    ("crm.note", "delete_selected"): ("superuser",),
    ("crm.segment", "delete_selected"): ("Marketing", "superuser"),
    ("crm.segment", "evaluate_now"): ("Marketing", "superuser"),
    ("crm.suppression", "lift"): ("superuser",),
    ("predictions.milestonerule", "delete_selected"): (
        "Marketing",
        "Customer success",
        "superuser",
    ),
    ("crm.tag", "delete_selected"): ("Marketing", "superuser"),
    ("crm.task", "delete_selected"): ("superuser",),
    ("crm.task", "mark_done"): ("Sales", "Marketing", "Customer success", "superuser"),
    ("django_q.failure", "delete_selected"): ("superuser",),
    ("django_q.failure", "resubmit_task"): ("superuser",),
    ("django_q.ormq", "delete_selected"): ("superuser",),
    ("django_q.schedule", "delete_selected"): ("superuser",),
    ("django_q.success", "delete_selected"): ("superuser",),
    ("django_q.success", "resubmit_task"): ("superuser",),
    ("scoring.demoroutingrule", "delete_selected"): ("superuser",),
    ("scoring.handoff", "accept"): ("Sales", "superuser"),
    ("scoring.handoff", "claim"): ("Sales", "superuser"),
    ("scoring.handoff", "mark_contacted"): ("Sales", "superuser"),
    ("scoring.handoff", "recycle"): ("Sales", "superuser"),
    ("scoring.handoff", "reject"): ("Sales", "superuser"),
    ("scoring.handoffrule", "delete_selected"): ("superuser",),
    ("scoring.scoringrule", "delete_selected"): ("superuser",),
    ("scoring.scoringrule", "reapply_fit_rules"): ("Marketing", "superuser"),
    ("scoring.territory", "delete_selected"): ("superuser",),
    ("sequences.circuitbreakertrip", "resume_marketing"): ("Marketing", "superuser"),
    ("sequences.emailtemplate", "delete_selected"): ("Marketing", "superuser"),
    ("sequences.outboundmessage", "resolve_unknown"): ("superuser",),
    ("sequences.sequence", "activate"): ("Marketing", "superuser"),
    ("sequences.sequence", "archive"): ("Marketing", "superuser"),
    ("sequences.sequence", "delete_selected"): ("Marketing", "superuser"),
    ("sequences.sequence", "export_yaml"): ("Sales", "Marketing", "Customer success", "superuser"),
    ("sequences.sequence", "pause"): ("Marketing", "superuser"),
    ("sequences.sequence", "resume"): ("Marketing", "superuser"),
}

#: Admin views added with get_urls(): URL name → the roles that may open it.
ADMIN_VIEWS: dict[str, tuple[str, ...]] = {
    "crm_contact_import": ("Sales", "Marketing", "superuser"),
    "crm_contact_process_import": ("Sales", "Marketing", "superuser"),
    "crm_contact_export": ("Sales", "Marketing", "Customer success", "superuser"),
    "crm_segment_preview": ("Sales", "Marketing", "Customer success", "superuser"),
    "crm_segment_export": ("Sales", "Marketing", "Customer success", "superuser"),
    "crm_segment_status": ("Sales", "Marketing", "Customer success", "superuser"),
    "predictions_predictionrun_insights": ("Sales", "Marketing", "Customer success", "superuser"),
    "predictions_predictionrun_calibration": (
        "Sales",
        "Marketing",
        "Customer success",
        "superuser",
    ),
    "reports_dashboard": ("Sales", "Marketing", "Customer success", "superuser"),
    "scoring_handoff_report": ("Sales", "Marketing", "Customer success", "superuser"),
    "scoring_handoff_act": ("Sales", "superuser"),
    # The "Sales manager" group (not one of the probed roles) adds this to Sales.
    "scoring_handoff_reassign": ("superuser",),
    "sequences_deliverability": ("Sales", "Marketing", "Customer success", "superuser"),
    "sequences_emailtemplate_preview": ("Sales", "Marketing", "Customer success", "superuser"),
    "sequences_sequence_activate": ("Marketing", "superuser"),
    "sequences_sequence_builder": ("Sales", "Marketing", "Customer success", "superuser"),
    "sequences_sequence_install_playbook": ("Marketing", "superuser"),
    "sequences_sequence_pause": ("Marketing", "superuser"),
    "sequences_sequence_resume": ("Marketing", "superuser"),
    "sequences_sequence_import_yaml": ("Marketing", "superuser"),
}

#: Every API route (sample ids). The API authenticates API keys only, never a staff
#: session: anonymous visitors and every staff role get 401 on each route and method,
#: except the schema and its docs page, which anyone may read (GET).
API_ROUTES = (
    "/api/v1/companies/",
    "/api/v1/companies/1/",
    "/api/v1/contacts/",
    "/api/v1/contacts/1/",
    "/api/v1/contacts/1/export/",
    "/api/v1/contacts/1/unsubscribe/",
    "/api/v1/deals/",
    "/api/v1/deals/1/",
    "/api/v1/docs/",
    "/api/v1/events/",
    "/api/v1/handoffs/",
    "/api/v1/handoffs/1/",
    "/api/v1/handoffs/1/accept/",
    "/api/v1/handoffs/1/claim/",
    "/api/v1/handoffs/1/contacted/",
    "/api/v1/handoffs/1/recycle/",
    "/api/v1/handoffs/1/reject/",
    "/api/v1/identify/",
    "/api/v1/reports/sequences/",
    "/api/v1/reports/sequences/sample/",
    "/api/v1/schema/",
    "/api/v1/segments/",
    "/api/v1/segments/sample/members/",
    "/api/v1/sequences/",
    "/api/v1/sequences/1/enroll/",
)
API_PUBLIC = ("/api/v1/docs/", "/api/v1/schema/")


def render_markdown() -> str:
    """The tables of docs/admin.md's "Who may do what" section."""
    lines = [
        "| model | Sales | Marketing | Customer success | superuser |",
        "|---|---|---|---|---|",
    ]
    for label, letters in sorted(ADMIN_MODELS.items()):
        lines.append(f"| `{label}` | " + " | ".join(cell or "-" for cell in letters) + " |")
    lines += [
        "",
        "| action | Sales | Marketing | Customer success | superuser |",
        "|---|---|---|---|---|",
    ]
    for (label, action), roles in sorted(ADMIN_ACTIONS.items()):
        marks = " | ".join("yes" if role in roles else "-" for role in STAFF_ROLES)
        lines.append(f"| `{label}`: {action} | {marks} |")
    lines += [
        "",
        "| admin page | Sales | Marketing | Customer success | superuser |",
        "|---|---|---|---|---|",
    ]
    for name, roles in sorted(ADMIN_VIEWS.items()):
        marks = " | ".join("yes" if role in roles else "-" for role in STAFF_ROLES)
        lines.append(f"| `{name}` | {marks} |")
    private = [route for route in API_ROUTES if route not in API_PUBLIC]
    lines += [
        "",
        "API (`/api/v1/`): staff sessions never authenticate it. Without an API key, "
        "anonymous visitors and every role get 401 on every method of "
        + ", ".join(f"`{route}`" for route in private)
        + "; "
        + " and ".join(f"`{route}`" for route in API_PUBLIC)
        + " are public (GET).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
