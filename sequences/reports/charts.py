"""The reports' charts and tables, built from the selectors with crm.charts (the one chart module).

Each function turns plain figures into crm.charts.Chart objects; the admin page and the
dashboard panels show them, each with its table and CSV.
"""

from crm.charts import (
    Series,
    bar_chart,
    data_table,
    decimal,
    funnel_chart,
    integer,
    line_chart,
    percent,
)

STAGE_LABELS = {
    "enrolled": "Enrolled (mailed group)",
    "sent": "Emailed",
    "delivered": "Delivered",
    "opened": "Opened by the person",
    "machine_opened": "Machine opens (emails)",
    "clicked": "Clicked",
    "converted": "Converted (goal reached)",
    "revenue": "Bought within the window",
}
MONEY = decimal(2)
RATE = percent(1)


def _pct(value):
    return value if value is not None else None


def results_charts(results: dict) -> list:
    """Every chart and table of one sequence's results page, in reading order."""
    charts = [
        funnel_chart(
            key="funnel",
            title="Funnel",
            description="Contacts who got at least this far; opens by scanners and privacy "
            "proxies are left out.",
            stages=[
                (STAGE_LABELS[stage["stage"]], stage["count"])
                for stage in results["funnel"]
                if stage["stage"] not in ("machine_opened", "revenue")
            ],
        ),
        funnel_table(results),
        steps_chart(results),
        steps_table(results),
    ]
    if any(line["variants"] for line in results["steps"]):
        charts.append(variants_table(results))
    charts += [exits_table(results), attribution_table(results), holdout_table(results)]
    charts.append(sales_table(results))
    return charts


def funnel_table(results: dict):
    rows = [
        (STAGE_LABELS[stage["stage"]], stage["count"], _pct(stage.get("rate")))
        for stage in results["funnel"]
    ]
    revenue = results["funnel"][-1].get("amount", 0)
    rows[-1] = (*rows[-1][:2], None)
    return data_table(
        key="funnel-rates",
        title="Funnel: counts and rates",
        description=f"Rate: of the stage before (converted: of enrolled; machine opens: of "
        f"delivered emails). Bought within the window: {revenue:,.2f} {results['currency']}.",
        columns=("Stage", "Count", "Rate"),
        rows=rows,
        formats=(None, integer, RATE),
    )


def steps_chart(results: dict):
    steps = results["steps"]
    return bar_chart(
        key="steps",
        title="Per step: sent, opened, clicked",
        x_label="Step",
        series=[
            Series("Sent", [(line["step"], line["sent"]) for line in steps]),
            Series("Opened", [(line["step"], line["opened"]) for line in steps]),
            Series("Clicked", [(line["step"], line["clicked"]) for line in steps]),
        ],
    )


def steps_table(results: dict):
    return data_table(
        key="steps-table",
        title="Per step: drop-off, exits and credit",
        description="Kept: this step's sends as a share of the previous step's. Exits: "
        "enrollments that ended waiting for this step.",
        columns=(
            "Step",
            "Sent",
            "Delivered",
            "Opened",
            "Machine opens",
            "Clicked",
            "Click rate",
            "Kept from previous",
            "Exits here",
            "Credited orders",
            f"Credited revenue ({results['currency']})",
            "Repeat orders",
            "Handoffs",
            "Accepted by sales",
        ),
        rows=[
            (
                line["step"],
                line["sent"],
                line["delivered"],
                line["opened"],
                line["machine_opened"],
                line["clicked"],
                line["click_rate"],
                line["kept_from_previous"],
                line["exits_here"],
                line["attributed_conversions"],
                line["attributed_revenue"],
                line["repeat_orders"],
                line["handoffs"],
                line["handoffs_accepted"],
            )
            for line in results["steps"]
        ],
        formats=(None, *[integer] * 5, RATE, RATE, integer, integer, MONEY, *[integer] * 3),
    )


def variants_table(results: dict):
    rows = []
    for line in results["steps"]:
        if not line["variants"]:
            continue
        if line["variants_p_value"] is None:
            verdict = "not enough data"
        elif line["variants_significant"]:
            verdict = f"significant (p = {line['variants_p_value']:.3f})"
        else:
            verdict = f"not yet significant (p = {line['variants_p_value']:.3f})"
        for variant in line["variants"]:
            rows.append(
                (
                    line["step"],
                    variant["variant"],
                    variant["sent"],
                    variant["clicked"],
                    variant["click_rate"],
                    variant["attributed_revenue"],
                    verdict,
                )
            )
    return data_table(
        key="variants",
        title="A/B variants",
        description="Chi-square test of equal click rates across a step's variants (95%).",
        columns=("Step", "Variant", "Sent", "Clicked", "Click rate", "Credited revenue", "Test"),
        rows=rows,
        formats=(None, None, integer, integer, RATE, MONEY, None),
    )


def exits_table(results: dict):
    return data_table(
        key="exits",
        title="How enrollments ended",
        columns=("End", "Reason", "Waiting for step", "Enrollments"),
        rows=[
            (line["state"], line["reason"] or "-", line["step"] or "-", line["count"])
            for line in results["exits"]
        ],
        formats=(None, None, None, integer),
        empty_text="No enrollment has ended in this period.",
    )


def attribution_table(results: dict):
    touch, incremental = results["attribution"]["touch"], results["attribution"]["incremental"]
    how = f"last click within {touch['window_days']} days"
    if touch["opens_count"]:
        how += f", or open within {touch['open_window_days']} day(s)"
    rows = [
        ("Touch-based", how, touch["conversions"], touch["revenue"]),
        (
            "Incremental (holdout)",
            "(mailed rate - held-out rate) x contacts mailed",
            incremental["conversions"],
            incremental["revenue"],
        ),
    ]
    return data_table(
        key="attribution",
        title="Attribution, two ways",
        description="Touch-based credits each conversion to at most one email; incremental "
        "counts only what the mailing added over the holdout group.",
        columns=("Method", "Rule", "Conversions", f"Revenue ({results['currency']})"),
        rows=rows,
        formats=(None, None, decimal(1), MONEY),
    )


def holdout_table(results: dict):
    holdout = results["holdout"]
    lift = holdout["lift"]
    rows = [
        (
            name.capitalize(),
            group["contacts"],
            group["converted"],
            group["conversion_rate"],
            group["revenue"],
            group["revenue_per_contact"],
        )
        for name, group in (("mailed", holdout["mailed"]), ("held out", holdout["holdout"]))
    ]
    if "difference" in lift:
        verdict = (
            f"Lift {lift['difference']:+.2%} (95% CI {lift['low']:+.2%} to {lift['high']:+.2%}): "
            f"{lift['status']}"
        )
    else:
        verdict = "No holdout data yet."
    money = holdout.get("revenue_lift", {})
    if "difference" in money:
        currency = results["currency"]
        verdict += (
            f". Revenue per contact {money['difference']:+.2f} {currency} (95% CI "
            f"{money['low']:+.2f} to {money['high']:+.2f}): {money['status']}"
        )
    return data_table(
        key="holdout",
        title=f"Holdout ({holdout['percent']}% never mailed)",
        description=verdict,
        columns=(
            "Group",
            "Contacts",
            "Converted",
            "Conversion rate",
            f"Revenue ({results['currency']})",
            "Revenue per contact",
        ),
        rows=rows,
        formats=(None, integer, integer, RATE, MONEY, MONEY),
    )


def sales_table(results: dict):
    sales = results["sales"]
    return data_table(
        key="sales",
        title="Sales conversations after entering",
        columns=("Figure", "Count", f"Amount ({results['currency']})"),
        rows=[
            ("Handoffs to sales", sales["handoffs"], None),
            ("accepted", sales["handoffs_accepted"], None),
            ("recycled", sales["handoffs_recycled"], None),
            ("rejected", sales["handoffs_rejected"], None),
            ("Deals opened", sales["deals_opened"], sales["deals_opened_amount"]),
            ("Deals won", sales["deals_won"], sales["deals_won_amount"]),
        ],
        formats=(None, integer, MONEY),
    )


def feedback_table(lines: list[dict], key: str = "feedback"):
    return data_table(
        key=key,
        title="Sales feedback: handoff outcomes by the email before them",
        columns=("Sequence", "Email", "Outcome", "Reason", "Handoffs"),
        rows=[
            (line["sequence"], line["step"] or "-", line["outcome"], line["reason"] or "-", n)
            for line in lines
            for n in [line["count"]]
        ],
        formats=(None, None, None, None, integer),
        empty_text="Sales has not closed a handoff yet.",
    )


def overview_table(lines: list[dict], links: list[str], currency: str):
    return data_table(
        key="sequences",
        title="Sequences",
        columns=(
            "Sequence",
            "Enrolled",
            "Sent",
            "Opened",
            "Clicked",
            "Converted",
            "Credited orders",
            f"Credited revenue ({currency})",
            f"Incremental revenue ({currency})",
            "Lift",
            "Lift status",
            "Handoffs",
            "Deals won",
        ),
        rows=[
            (
                line["name"],
                line["enrolled"],
                line["sent"],
                line["opened"],
                line["clicked"],
                line["converted"],
                line["attributed_conversions"],
                line["attributed_revenue"],
                line["incremental"]["revenue"],
                line["holdout"]["lift"].get("difference"),
                line["holdout"]["lift"]["status"],
                line["handoffs"],
                line["deals_won"],
            )
            for line in lines
        ],
        formats=(None, *[integer] * 6, MONEY, MONEY, percent(2), None, integer, integer),
        row_links=links,
        empty_text="No sequence has results in this period.",
    )


def revenue_chart(days: list[dict], currency: str):
    return line_chart(
        key="revenue",
        title=f"Revenue per day ({currency})",
        description="All orders and won deals, and the part credited to an email by touch.",
        series=[
            Series("All revenue", [(line["day"], line["revenue"]) for line in days]),
            Series("Credited to an email", [(line["day"], line["attributed"]) for line in days]),
        ],
        value_format=MONEY,
    )


def segment_table(lines: list[dict]):
    labels = ("same day", "1-7", "8-30", "31-90", "over 90")
    return data_table(
        key="segment-speed",
        title="Which segments convert faster: days from entering to the first conversion",
        columns=("Segment", "Converted", "Median days", *[f"{label} d" for label in labels]),
        rows=[
            (
                line["name"],
                line["converted"],
                line["median_days"],
                *[line["distribution"][label] for label in labels],
            )
            for line in lines
        ],
        formats=(None, integer, decimal(1), *[integer] * 5),
        empty_text="No contact in a segment has converted yet.",
    )


def repeat_table(lines: list[dict], currency: str):
    return data_table(
        key="repeat",
        title="Which emails lead to repeat purchases",
        columns=(
            "Sequence",
            "Email",
            "Credited orders",
            "Repeat orders",
            "Repeat rate",
            f"Repeat revenue ({currency})",
        ),
        rows=[
            (
                line["sequence"],
                line["step"],
                line["attributed"],
                line["repeat_orders"],
                line["repeat_rate"],
                line["repeat_revenue"],
            )
            for line in lines
        ],
        formats=(None, None, integer, integer, RATE, MONEY),
        empty_text="No email has a credited order yet.",
    )


def topic_chart(lines: list[dict]):
    return bar_chart(
        key="topics",
        title="Engagement by topic: open and click rates",
        x_label="Topic",
        series=[
            Series("Open rate", [(line["topic"], line["open_rate"] or 0) for line in lines]),
            Series("Click rate", [(line["topic"], line["click_rate"] or 0) for line in lines]),
        ],
        value_format=RATE,
    )
