"""The restricted template engine for staff-written emails (DESIGN.md, invariant 6).

Django's template language is not safe against untrusted authors with its default
tags, so emails render in an Engine with no loaders and a builtin library holding
only the tags and filters below, over a context of plain dicts and strings: no
models, settings or files are reachable. `load`, `include`, `extends`, `debug`
and `ssi` are refused when a template is saved (sequences.review).

Every render runs under a RenderBudget (loop iterations, output characters, wall-clock
time) that is checked *while* rendering: each loop iteration and each printed node
spends from it, so a template such as two nested loops over 2,000-character values
stops after the budget instead of holding a worker for minutes. At save time the same
budget is tried against a worst-case context (sequences.review), so such a template is
refused before it can reach a send.
"""

import contextvars
import copy
import functools
import html as html_lib
import re
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.template import (
    Context,
    Engine,
    Library,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)
from django.template.base import FilterExpression, Template, Variable, VariableNode
from django.template.defaulttags import ForNode

from sequences.conditions import MISSING, contact_matches

SAFE_TAGS = ("if", "for", "with", "firstof", "spaceless", "comment", "now", "cycle")
SAFE_FILTERS = (
    "default",
    "default_if_none",
    "upper",
    "lower",
    "title",
    "capfirst",
    "truncatechars",
    "truncatewords",
    "date",
    "floatformat",
    "yesno",
    "length",
    "first",
    "join",
    "linebreaksbr",
    "striptags",
    "urlencode",
)
FORBIDDEN_TAGS = ("load", "include", "extends", "debug", "ssi", "url", "csrf_token", "templatetag")
FALLBACK_FILTERS = frozenset({"default", "default_if_none"})
#: Context roots whose values come from people's data, so may be missing.
PERSONAL_ROOTS = frozenset({"contact", "company", "owner", "trigger"})
MAX_NESTED_LOOPS = 2
#: The render budget of one email (subject, preheader, HTML, text and blocks together).
#: Real emails loop over a few dozen items and are a few hundred KB at most.
MAX_OUTPUT_CHARS = 500_000
MAX_LOOP_ITERATIONS = 10_000
MAX_RENDER_SECONDS = 2.0
#: The longest text a context value is assumed to hold when a template is tried at save.
PROBE_TEXT_CHARS = 2_000


class UnsafeTemplate(ValueError):
    """The template uses something the restricted engine refuses."""


class RenderBudgetExceeded(UnsafeTemplate):
    """Rendering went over its budget of loop iterations, output size or time."""


@dataclass
class RenderBudget:
    """What one email may spend while rendering; spending past a limit raises, and stays over."""

    max_iterations: int = MAX_LOOP_ITERATIONS
    max_chars: int = MAX_OUTPUT_CHARS
    max_seconds: float = MAX_RENDER_SECONDS
    iterations: int = 0
    chars: int = 0
    started: float = field(default_factory=lambda: time.monotonic())
    exceeded: str = ""

    def spend(self, *, iterations: int = 0, chars: int = 0) -> None:
        self.iterations += iterations
        self.chars += chars
        if not self.exceeded:
            if self.iterations > self.max_iterations:
                self.exceeded = f"more than {self.max_iterations:,} loop iterations"
            elif self.chars > self.max_chars:
                self.exceeded = f"more than {self.max_chars:,} characters of output"
            elif time.monotonic() - self.started > self.max_seconds:
                self.exceeded = f"more than {self.max_seconds:g} s of rendering"
        # Checked on every spend, not only the first time: Django's {% if %} swallows
        # exceptions from its operands, so a refusal there must not let rendering go on.
        self.check()

    def check(self) -> None:
        if self.exceeded:
            raise RenderBudgetExceeded(f"The email is too expensive to render: {self.exceeded}.")


_BUDGET: contextvars.ContextVar[RenderBudget | None] = contextvars.ContextVar(
    "nextstep_render_budget", default=None
)


def _current_budget() -> RenderBudget:
    budget = _BUDGET.get()
    if budget is None:
        # Rendering outside render_email (e.g. a bare Template.render in a test) is still
        # bounded: it gets a budget of its own.
        budget = RenderBudget()
        _BUDGET.set(budget)
    return budget


class _BudgetedValues:
    """A loop's values that spend one iteration from the budget per item yielded.

    ForNode asks only for len(), iter() and reversed(), so wrapping the resolved value
    puts the check inside Django's own loop, before each iteration's body renders.
    """

    def __init__(self, values, budget: RenderBudget):
        self.values = values if hasattr(values, "__len__") else list(values)
        self.budget = budget

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self):
        for item in self.values:
            self.budget.spend(iterations=1)
            yield item

    def __reversed__(self):
        for item in reversed(self.values):
            self.budget.spend(iterations=1)
            yield item


class _BudgetedSequence:
    """Wraps a {% for %} tag's sequence expression so what it resolves to is budgeted."""

    def __init__(self, expression: FilterExpression):
        self.expression = expression

    def resolve(self, context, ignore_failures=False):
        values = self.expression.resolve(context, ignore_failures=ignore_failures)
        if values is None:
            return None
        return _BudgetedValues(values, _current_budget())

    def __str__(self) -> str:
        return str(self.expression)


def _budgeted_for(parser, token) -> ForNode:
    node = defaulttags.do_for(parser, token)
    node.sequence = _BudgetedSequence(node.sequence)
    return node


def _budgeted_join(value, arg, autoescape=True):
    """`join`, refused before building a string larger than the output budget.

    `{% with x=s|join:s %}{{ x|join:x }}` would otherwise square the size twice in C,
    where no loop check can stop it.
    """
    try:
        items = list(value)
    except TypeError:
        return value
    size = sum(len(str(item)) for item in items) + len(str(arg)) * max(len(items) - 1, 0)
    _current_budget().spend(chars=size)
    return defaultfilters.join(value, arg, autoescape=autoescape)


def _restricted_library() -> Library:
    library = Library()
    for name in SAFE_TAGS:
        library.tags[name] = defaulttags.register.tags[name]
    library.tags["for"] = _budgeted_for
    for name in SAFE_FILTERS:
        library.filters[name] = defaultfilters.register.filters[name]
    library.filter("join", _budgeted_join, is_safe=True, needs_autoescape=True)
    return library


ENGINE = Engine(dirs=[], app_dirs=False, loaders=[], libraries={}, autoescape=True)
# Engine() always adds Django's default builtins (with include/extends); replace them.
ENGINE.template_builtins = [_restricted_library()]


def compile_template(source: str) -> Template:
    """Compile staff-written text in the restricted engine, or raise UnsafeTemplate.

    Compiled once per source text and process (a batch renders one template for many
    people, seven compilations per email otherwise); a compiled Template keeps no state
    between renders, and the render budget is read from a context variable.
    """
    return _compile(source)


@functools.lru_cache(maxsize=256)
def _compile(source: str) -> Template:
    forbidden = re.search(r"{%-?\s*(" + "|".join(FORBIDDEN_TAGS) + r")\b", source)
    if forbidden:
        raise UnsafeTemplate(f"The {{% {forbidden.group(1)} %}} tag is not allowed in emails.")
    try:
        template = ENGINE.from_string(source)
    except TemplateSyntaxError as exc:
        raise UnsafeTemplate(f"Template error: {exc}") from exc
    if _loop_depth(template.nodelist) > MAX_NESTED_LOOPS:
        raise UnsafeTemplate(f"Loops may be nested at most {MAX_NESTED_LOOPS} deep.")
    _count_output(template.nodelist)
    return template


def _count_output(nodelist) -> None:
    """Make every leaf node (text, variable, cycle, now, firstof) spend its output length.

    Containers (if, for, with, spaceless) only join their children's output, so counting
    the leaves counts every character once, as it is produced.
    """
    for node in nodelist:
        children = [getattr(node, name, None) for name in node.child_nodelists]
        children = [child for child in children if child]
        if children:
            for child in children:
                _count_output(child)
        elif not isinstance(node, ForNode):
            node.render_annotated = _counted(node.render_annotated)


def _counted(render):
    def render_counted(context):
        output = render(context)
        _current_budget().spend(chars=len(output))
        return output

    return render_counted


def _loop_depth(nodelist) -> int:
    deepest = 0
    for node in nodelist:
        inner = max(
            (
                _loop_depth(getattr(node, name))
                for name in node.child_nodelists
                if getattr(node, name, None)
            ),
            default=0,
        )
        deepest = max(deepest, inner + (1 if isinstance(node, ForNode) else 0))
    return deepest


@dataclass(frozen=True)
class Token:
    """A `{{ variable }}` in a template: its dotted name and whether it has a fallback."""

    name: str
    has_fallback: bool

    @property
    def is_personal(self) -> bool:
        return self.name.split(".")[0] in PERSONAL_ROOTS


def template_tokens(source: str) -> list[Token]:
    """Every variable a template prints, in order; [] when it does not compile."""
    return list(_tokens(source))


@functools.lru_cache(maxsize=256)
def _tokens(source: str) -> tuple[Token, ...]:
    try:
        template = compile_template(source)
    except UnsafeTemplate:
        return ()
    tokens = []
    for node in template.nodelist.get_nodes_by_type(VariableNode):
        token = _token(node.filter_expression)
        if token is not None:
            tokens.append(token)
    return tuple(tokens)


def _token(expression: FilterExpression) -> Token | None:
    if not isinstance(expression.var, Variable) or expression.var.literal is not None:
        return None
    names = {getattr(func, "_filter_name", func.__name__) for func, _args in expression.filters}
    return Token(name=expression.var.var, has_fallback=bool(names & FALLBACK_FILTERS))


# --- Rendering ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str
    missing: tuple[str, ...] = ()


def render_email(template, data: dict, *, budget: RenderBudget | None = None) -> RenderedEmail:
    """Render subject, HTML and text over plain `data` within a budget; list missing tokens.

    Raises RenderBudgetExceeded (an UnsafeTemplate) as soon as the budget is spent.
    """
    reset = _BUDGET.set(budget or RenderBudget())
    try:
        rendered = _render_email(template, data)
        _current_budget().check()
        return rendered
    except UnsafeTemplate:
        raise
    except Exception as exc:
        # A filter given a value it cannot take (e.g. floatformat:"99999999") raises from
        # deep inside Django; the message fails, the worker does not.
        raise UnsafeTemplate(f"The template cannot be rendered: {type(exc).__name__}.") from exc
    finally:
        _BUDGET.reset(reset)


def _render_email(template, data: dict) -> RenderedEmail:
    blocks = _blocks(template, data)
    data = copy.copy(data)  # keeps a worst-case _ProbeContext what it is
    data["blocks"] = blocks
    sources = (template.subject, template.preheader, template.html, template.text)
    missing = tuple(dict.fromkeys(name for source in sources for name in _missing(source, data)))
    subject = _render(template.subject, data, autoescape=False).replace("\n", " ").strip()
    preheader = _render(template.preheader, data, autoescape=False)
    body = neutralise_script_urls(_render(template.html, data, autoescape=True))
    html = _with_preheader(body, preheader)
    text = _render(template.text, data, autoescape=False) if template.text else text_from_html(body)
    return RenderedEmail(subject=subject, html=html, text=text, missing=missing)


def _render(source: str, data: dict, *, autoescape: bool) -> str:
    if "{" not in source:
        # No tag, variable or comment: the engine would return the text as it is (a
        # fixed subject, an empty preheader). Spent from the budget all the same.
        _current_budget().spend(chars=len(source))
        return source
    return compile_template(source).render(Context(data, autoescape=autoescape))


# --- Trying a template against the budget at save time --------------------------------------


class _ProbeText(str):
    """A worst-case context value: a long text that also answers any key with another one.

    `contact.notes`, `trigger.items` and `contact.company.name` all resolve to
    PROBE_TEXT_CHARS characters, so loops and output are as large as real data can make
    them; iterating yields plain one-character strings, as a real text would.
    """

    def __new__(cls, size: int = PROBE_TEXT_CHARS):
        return super().__new__(cls, "x" * size)

    def __getitem__(self, key):
        if isinstance(key, str):
            return _ProbeText(len(self))
        return super().__getitem__(key)


class _ProbeContext(dict):
    """A context in which every name exists and holds a _ProbeText of one size."""

    def __init__(self, size: int = PROBE_TEXT_CHARS):
        super().__init__()
        self.size = size

    def __contains__(self, key) -> bool:
        return True

    def __getitem__(self, key):
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        return _ProbeText(self.size)

    def __copy__(self):
        duplicate = _ProbeContext(self.size)
        duplicate.update(self)
        return duplicate


def render_budget_error(template) -> str:
    """Why the template cannot be sent: it fails with no data, or could go over budget."""
    try:
        # Every variable present but empty: what fails now fails for everyone.
        render_email(template, _ProbeContext(0))
    except UnsafeTemplate as exc:
        return str(exc)
    try:
        render_email(template, _ProbeContext())
    except RenderBudgetExceeded as exc:
        return (
            f"{exc} With values of {PROBE_TEXT_CHARS:,} characters (as contact data and "
            "event properties can be), the template does too much work; loop over fewer "
            "or shorter values."
        )
    except UnsafeTemplate:
        # Worst-case text where real data may hold lists ({% for k, v in … %}) can fail
        # in ways real data never does: only the budget is judged here.
        return ""
    return ""


def _missing(source: str, data: dict) -> list[str]:
    return [
        token.name
        for token in template_tokens(source)
        if token.is_personal and not token.has_fallback and _is_empty(_lookup(data, token.name))
    ]


def _lookup(data: dict, name: str):
    value = data
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def _is_empty(value) -> bool:
    return value is MISSING or value is None or (isinstance(value, str) and not value.strip())


def _blocks(template, data: dict) -> dict[str, str]:
    """Render each dynamic block whose conditions the contact meets; others are empty."""
    facts = data.get("contact", {})
    rendered = {}
    for block in template.blocks or []:
        shown = isinstance(data, _ProbeContext) or contact_matches(block.get("when"), facts)
        rendered[block["key"]] = (
            _render(block.get("html", ""), data, autoescape=True) if shown else ""
        )
    return rendered


URL_ATTRIBUTE = re.compile(
    r"""(?P<name>\b(?:href|src|action|formaction|background|poster|xlink:href)\s*=\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s>]+)""",
    re.IGNORECASE,
)
SCRIPT_SCHEMES = ("javascript:", "vbscript:", "data:")


def neutralise_script_urls(html: str) -> str:
    """Replace javascript:, vbscript: and data: URLs in link and source attributes with "#".

    Autoescaping stops data breaking out of an attribute, not a whole value such as
    `javascript:…` landing in `href="{{ contact.properties.website }}"`. No email needs
    a script URL, so they are removed wherever they come from.
    """

    def clean(match: re.Match) -> str:
        value = match.group("value")
        text = html_lib.unescape(value.strip("\"'"))
        compact = "".join(ch for ch in text if ch.isprintable() and not ch.isspace()).lower()
        if compact.startswith(SCRIPT_SCHEMES):
            return f'{match.group("name")}"#"'
        return match.group(0)

    return URL_ATTRIBUTE.sub(clean, html)


PREHEADER_OPEN = '<div style="display:none;max-height:0;overflow:hidden">'


def _with_preheader(body: str, preheader: str) -> str:
    if not preheader.strip():
        return body
    hidden = f"{PREHEADER_OPEN}{html_lib.escape(preheader.strip())}</div>"
    return hidden + body


def preheader_of(html: str) -> str:
    """The rendered preheader, the inbox's preview line, out of a rendered email's HTML."""
    if not html.startswith(PREHEADER_OPEN):
        return ""
    return html_lib.unescape(html[len(PREHEADER_OPEN) : html.index("</div>")])


def text_from_html(body: str) -> str:
    """A readable plain-text part: links keep their URL, blocks become paragraphs."""
    text = re.sub(r"(?is)<(script|style).*?</\1>", "", body)
    text = re.sub(r'(?is)<a\s[^>]*href="([^"]*)"[^>]*>(.*?)</a>', r"\2 (\1)", text)
    text = re.sub(r"(?i)<br\s*/?>", "\n", text)
    text = re.sub(r"(?i)</(p|div|h[1-6]|li|tr)>", "\n\n", text)
    text = re.sub(r"<[^>]+>", "", text)
    text = html_lib.unescape(text)
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def postal_address() -> str:
    return settings.POSTAL_ADDRESS
