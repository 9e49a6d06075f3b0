"""crm.charts: SVG drawn from plain data, the same numbers as a table, and a CSV."""

import datetime
import re
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.http import Http404
from django.template.loader import render_to_string
from django.test import RequestFactory

from crm.charts import (
    Bin,
    ReferenceLine,
    Series,
    bar_chart,
    chart_csv_response,
    csv_export_or_none,
    data_table,
    funnel_chart,
    histogram_bins,
    histogram_chart,
    line_chart,
    nice_ticks,
    percent,
)

DAYS = [datetime.date(2026, 11, day) for day in (1, 2, 3)]


def _complaints(rates=(0.0002, 0.0005, None)):
    return line_chart(
        key="complaint-rate",
        title="Complaint rate per day",
        series=[Series("Complaint rate", list(zip(DAYS, rates, strict=True)))],
        reference_lines=[
            ReferenceLine(0.001, "0.1%", "warn"),
            ReferenceLine(0.003, "0.3%", "danger"),
        ],
        value_format=percent(2),
    )


def _csv(response) -> str:
    return b"".join(response.streaming_content).decode("utf-8-sig")


def test_a_line_chart_shows_the_same_numbers_in_its_table_and_csv():
    chart = _complaints()

    assert chart.columns == ("Day", "Complaint rate")
    assert chart.rows == (("Nov 1", "0.02%"), ("Nov 2", "0.05%"), ("Nov 3", "–"))
    assert chart.raw_rows == (("2026-11-01", 0.0002), ("2026-11-02", 0.0005), ("2026-11-03", ""))
    assert _csv(chart_csv_response(chart)).splitlines() == [
        "Day,Complaint rate",
        "2026-11-01,0.0002",
        "2026-11-02,0.0005",
        "2026-11-03,",
    ]


def test_reference_lines_widen_the_scale_so_a_limit_above_every_day_still_shows():
    chart = _complaints()

    assert 'class="nschart-ref nschart-ref-danger"' in chart.svg
    assert ">0.30%<" in chart.svg  # the top tick reaches the 0.3% line
    assert [item.label for item in chart.legend] == ["Complaint rate", "0.1%", "0.3%"]


def test_a_missing_value_breaks_the_line_instead_of_drawing_zero():
    chart = line_chart(
        key="gappy",
        title="Sent",
        series=[Series("Sent", [(DAYS[0], 5), (DAYS[1], None), (DAYS[2], 7)])],
    )

    assert chart.svg.count("<polyline") == 0  # two runs of one point: dots only
    assert chart.svg.count("<circle") == 2


def test_an_area_chart_fills_under_each_series():
    chart = line_chart(
        key="growth",
        title="Members",
        series=[Series("A", [(d, n) for n, d in enumerate(DAYS)]), Series("B", [(DAYS[0], 1)])],
        area=True,
    )

    assert chart.svg.count('<path class="nschart-area nschart-s1"') == 1
    assert "nschart-point nschart-s2" in chart.svg


def test_the_svg_is_labelled_for_screen_readers_and_escapes_names():
    chart = line_chart(
        key="names",
        title="<b>Opens</b>",
        series=[Series("<script>alert(1)</script>", [(DAYS[0], 1), (DAYS[1], 2)])],
    )

    assert 'role="img"' in chart.svg
    assert 'aria-labelledby="nschart-names-title nschart-names-desc"' in chart.svg
    assert "<script>" not in chart.svg
    assert "&lt;b&gt;Opens&lt;/b&gt;" in chart.svg


def test_grouped_bars_show_a_dash_for_a_missing_value():
    chart = bar_chart(
        key="per-sequence",
        title="Sends per sequence",
        x_label="Sequence",
        series=[
            Series("Sent", [("Welcome", 120), ("Win-back", 30)]),
            Series("Clicked", [("Welcome", 12)]),
        ],
    )

    assert chart.rows == (("Welcome", "120", "12"), ("Win-back", "30", "–"))
    assert chart.svg.count('<rect class="nschart-bar') == 3


def test_a_funnel_table_gives_the_share_of_the_first_and_previous_stage():
    chart = funnel_chart(
        key="funnel",
        title="Welcome funnel",
        stages=[("Enrolled", 200), ("Sent", 180), ("Opened", 45)],
    )

    assert chart.rows == (
        ("Enrolled", "200", "100.0%", "–"),
        ("Sent", "180", "90.0%", "90.0%"),
        ("Opened", "45", "22.5%", "25.0%"),
    )
    assert chart.raw_rows[2] == ("Opened", 45, 0.225, 0.25)


def test_a_funnel_nobody_entered_shows_its_zeros_without_a_drawing():
    chart = funnel_chart(key="empty-funnel", title="F", stages=[("Enrolled", 0), ("Sent", 0)])

    assert chart.svg == ""
    assert chart.rows[1] == ("Sent", "0", "–", "–")


def test_histogram_bins_count_every_value_once():
    bins = histogram_bins([-5, 0, 9, 10, 49, 50, 500], [0, 10, 50])

    assert [(b.shown, b.count) for b in bins] == [("0–9", 3), ("10–49", 2), ("50+", 2)]


def test_a_histogram_draws_one_bar_per_bin_and_whole_number_ticks():
    chart = histogram_chart(
        key="scores", title="Scores", bins=[Bin(0, 10, 1), Bin(10, 20, 0), Bin(20, None, 1)]
    )

    assert chart.rows == (("0–9", "1"), ("10–19", "0"), ("20+", "1"))
    assert chart.svg.count('<rect class="nschart-bar') == 3
    assert ">0.5<" not in chart.svg


@pytest.mark.parametrize(
    ("low", "high", "whole", "expected"),
    [
        (0, 0.0035, False, [0.0, 0.001, 0.002, 0.003, 0.004]),
        (0, 1234, False, [0.0, 250.0, 500.0, 750.0, 1000.0, 1250.0]),
        (0, 1, True, [0, 1]),
        (0, 0, False, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
    ],
)
def test_nice_ticks_are_round_numbers_covering_the_range(low, high, whole, expected):
    assert nice_ticks(low, high, whole=whole) == expected


def test_an_empty_chart_says_so_instead_of_drawing_axes():
    chart = line_chart(key="nothing", title="Sent", series=[Series("Sent", [])])

    html = render_to_string("admin/charts/chart.html", {"chart": chart})

    assert chart.is_empty
    assert "No data for this period." in html
    assert "<svg" not in html


def test_the_include_renders_an_accessible_table_beside_the_chart_and_a_csv_link():
    request = RequestFactory().get("/admin/reports/", {"days": "30"})

    html = render_to_string("admin/charts/chart.html", {"chart": _complaints()}, request=request)

    assert '<figure class="nschart nschart-kind-line" id="nschart-complaint-rate">' in html
    assert "<caption>Complaint rate per day</caption>" in html
    assert '<th scope="col">Day</th>' in html
    assert '<th scope="row">Nov 1</th><td>0.02%</td>' in html
    href = re.search(r'<a href="([^"]+)" download>Download CSV</a>', html).group(1)
    assert href == "?days=30&amp;csv=complaint-rate"


def test_csv_export_answers_only_its_own_charts():
    charts = [_complaints(), data_table(key="other", title="O", columns=["a"], rows=[["=1+1"]])]
    factory = RequestFactory()

    assert csv_export_or_none(factory.get("/"), charts) is None
    response = csv_export_or_none(factory.get("/", {"csv": "other"}), charts)
    with pytest.raises(Http404):
        csv_export_or_none(factory.get("/", {"csv": "missing"}), charts)

    assert response["Content-Disposition"] == 'attachment; filename="other.csv"'
    assert _csv(response).splitlines() == ["a", "'=1+1"]  # a formula is escaped


def test_a_data_table_formats_numbers_per_column():
    chart = data_table(
        key="queue",
        title="Queue",
        columns=["Sequence", "Sent", "Open rate"],
        rows=[["Welcome", 1200, 0.25]],
        formats=[None, None, percent(0)],
    )

    assert chart.rows == (("Welcome", "1200", "25%"),)
    assert chart.raw_rows == (("Welcome", 1200, 0.25),)


@pytest.mark.parametrize("key", ["", "Has Spaces", "x" * 70, "-leading"])
def test_a_chart_key_must_be_a_slug(key):
    with pytest.raises(ValueError, match="lowercase slug"):
        line_chart(key=key, title="T", series=[Series("S", [])])


def test_a_reference_line_level_is_checked():
    with pytest.raises(ValueError, match="level"):
        ReferenceLine(0.1, "x", "red")


def test_the_styles_are_served_from_our_static_files_and_follow_the_dark_theme():
    path = finders.find("crm/charts.css")

    css = Path(path).read_text(encoding="utf-8")

    assert 'html[data-theme="dark"]' in css
    assert "prefers-color-scheme: dark" in css
    assert "var(--body-quiet-color)" in css


def test_a_data_table_links_its_rows_in_the_page_but_not_in_the_csv():
    chart = data_table(
        key="people",
        title="People",
        columns=["Contact", "Score"],
        rows=[["Ada", 40], ["Bo", 3]],
        row_links=["/admin/crm/contact/1/change/", ""],
    )

    html = render_to_string("admin/charts/chart.html", {"chart": chart})

    assert '<th scope="row"><a href="/admin/crm/contact/1/change/">Ada</a></th>' in html
    assert '<th scope="row">Bo</th>' in html
    assert _csv(chart_csv_response(chart)).splitlines() == ["Contact,Score", "Ada,40", "Bo,3"]


def test_row_links_must_match_the_rows():
    with pytest.raises(ValueError, match="1 row links for 2 rows"):
        data_table(key="t", title="T", columns=["a"], rows=[[1], [2]], row_links=["/x/"])
