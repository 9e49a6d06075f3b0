"""What seed_demo adds for scoring: a starter rule set and a handoff rule (config as code)."""

from crm.config_io import config_import

DEMO_CONFIG = """
version: 1
scoring_rules:
  - key: pricing-page
    name: Pricing page viewed
    category: engagement
    activity_kind: page_viewed
    points: 20
    cap_points: 40
    cap_period_days: 7
    halve_after_days: 30
    expire_after_days: 90
    conditions:
      match: all
      conditions:
        - {field: property, key: path, operator: contains, value: /pricing}
  - key: demo-request
    name: Demo requested
    category: engagement
    activity_kind: demo_requested
    points: 40
    cap_points: 40
    cap_period_days: 30
  - key: guide-download
    name: Guide downloaded
    category: engagement
    activity_kind: content_downloaded
    points: 10
    cap_points: 20
    cap_period_days: 30
    halve_after_days: 30
  - key: email-click
    name: Email link clicked
    category: engagement
    activity_kind: email_clicked
    points: 5
    cap_points: 15
    cap_period_days: 7
    halve_after_days: 14
  - key: senior-title
    name: Senior job title
    category: fit
    points: 15
    conditions:
      match: all
      conditions:
        - {field: job_title, operator: contains, value: head}
handoff_rules:
  - key: sales-ready
    name: Sales ready
    score_threshold: 60
    signal_rules: [pricing-page, demo-request]
    signal_window_days: 14
    lifecycle_stage: engaged_lead
    recycle_stage: engaged_lead
    sla_minutes: 30
    on_sla_breach: reassign
"""


def install_demo_scoring() -> str:
    """Import the demo's scoring and handoff rules; importing them again changes nothing."""
    report = config_import(DEMO_CONFIG)
    created = sum(len(summary.created) for summary in report.sections.values())
    return f"{created} rules created" if created else "rules already present"
