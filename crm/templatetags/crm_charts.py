"""{% chart_csv_href chart %}: the chart's CSV link, keeping the page's other parameters."""

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def chart_csv_href(context, chart) -> str:
    """?csv=<key> plus the current query (period, filters), so the CSV matches the page."""
    request = context.get("request")
    query = request.GET.copy() if request is not None else None
    if query is None:
        return f"?csv={chart.key}"
    query["csv"] = chart.key
    return "?" + query.urlencode()
