"""The restricted template engine for staff-written emails (DESIGN.md, invariant 6).

Django's template language is not safe against untrusted authors with its default
tags, so emails render in an Engine with no loaders and a builtin library holding
only the tags and filters below, over a context of plain dicts and strings: no
models, settings or files are reachable. `load`, `include`, `extends`, `debug`
and `ssi` are refused when a template is saved (sequences.review).
"""

import html as html_lib
import re
from dataclasses import dataclass

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
MAX_OUTPUT_CHARS = 500_000


def _restricted_library() -> Library:
    library = Library()
    for name in SAFE_TAGS:
        library.tags[name] = defaulttags.register.tags[name]
    for name in SAFE_FILTERS:
        library.filters[name] = defaultfilters.register.filters[name]
    return library


ENGINE = Engine(dirs=[], app_dirs=False, loaders=[], libraries={}, autoescape=True)
# Engine() always adds Django's default builtins (with include/extends); replace them.
ENGINE.template_builtins = [_restricted_library()]


class UnsafeTemplate(ValueError):
    """The template uses something the restricted engine refuses."""


def compile_template(source: str) -> Template:
    """Compile staff-written text in the restricted engine, or raise UnsafeTemplate."""
    forbidden = re.search(r"{%-?\s*(" + "|".join(FORBIDDEN_TAGS) + r")\b", source)
    if forbidden:
        raise UnsafeTemplate(f"The {{% {forbidden.group(1)} %}} tag is not allowed in emails.")
    try:
        template = ENGINE.from_string(source)
    except TemplateSyntaxError as exc:
        raise UnsafeTemplate(f"Template error: {exc}") from exc
    if _loop_depth(template.nodelist) > MAX_NESTED_LOOPS:
        raise UnsafeTemplate(f"Loops may be nested at most {MAX_NESTED_LOOPS} deep.")
    return template


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
    try:
        template = compile_template(source)
    except UnsafeTemplate:
        return []
    tokens = []
    for node in template.nodelist.get_nodes_by_type(VariableNode):
        token = _token(node.filter_expression)
        if token is not None:
            tokens.append(token)
    return tokens


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


def render_email(template, data: dict) -> RenderedEmail:
    """Render subject, HTML and text over plain `data`; list tokens whose data is missing."""
    data = {**data, "blocks": _blocks(template, data)}
    sources = (template.subject, template.preheader, template.html, template.text)
    missing = tuple(dict.fromkeys(name for source in sources for name in _missing(source, data)))
    subject = _render(template.subject, data, autoescape=False).replace("\n", " ").strip()
    preheader = _render(template.preheader, data, autoescape=False)
    body = _render(template.html, data, autoescape=True)
    html = _with_preheader(body, preheader)
    text = _render(template.text, data, autoescape=False) if template.text else text_from_html(body)
    return RenderedEmail(subject=subject, html=html, text=text, missing=missing)


def _render(source: str, data: dict, *, autoescape: bool) -> str:
    output = compile_template(source).render(Context(data, autoescape=autoescape))
    if len(output) > MAX_OUTPUT_CHARS:
        raise UnsafeTemplate("The rendered email is too large.")
    return output


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
        shown = all(contact_matches(condition, facts) for condition in block.get("when", []))
        rendered[block["key"]] = (
            _render(block.get("html", ""), data, autoescape=True) if shown else ""
        )
    return rendered


def _with_preheader(body: str, preheader: str) -> str:
    if not preheader.strip():
        return body
    hidden = (
        '<div style="display:none;max-height:0;overflow:hidden">'
        f"{html_lib.escape(preheader.strip())}</div>"
    )
    return hidden + body


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
