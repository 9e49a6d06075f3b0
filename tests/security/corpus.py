"""Hostile input for the XSS and template-injection tests, and a detector for what got through.

Every payload carries a marker (`xss7`) so the detector can tell an injected script,
handler or javascript: URL from the page's own markup: the page is parsed as a browser
would tokenise it, and the test fails if a marker shows up anywhere a browser would run it.
"""

from html.parser import HTMLParser

XSS_TEMPLATES = (
    '<script>alert("{m}")</script>',
    '<img src=x onerror=alert("{m}")>',
    '<svg onload=alert("{m}")>',
    '<svg><script>alert("{m}")</script></svg>',
    "<iframe src=\"javascript:alert('{m}')\"></iframe>",
    "<a href=\"javascript:alert('{m}')\">{m}</a>",
    '<body onload=alert("{m}")>',
    '"><script>alert("{m}")</script>',
    '\'><img src=x onerror=alert("{m}")>',
    "\" onmouseover=\"alert('{m}')",
    "' onfocus='alert(\"{m}\")' autofocus='",
    '</textarea><script>alert("{m}")</script>',
    '</title><script>alert("{m}")</script>',
    '<math><mtext><table><mglyph><style><img src=x onerror=alert("{m}")>',
    '<details open ontoggle=alert("{m}")>',
    '<input autofocus onfocus=alert("{m}")>',
    '<video><source onerror=alert("{m}")>',
    "<object data=\"javascript:alert('{m}')\">",
    "<embed src=\"javascript:alert('{m}')\">",
    "<form action=\"javascript:alert('{m}')\"><button>{m}</button></form>",
    "javascript:alert('{m}')",
    "JaVaScRiPt:alert('{m}')",
    "data:text/html,<script>alert('{m}')</script>",
    "<IMG SRC=JaVaScRiPt:alert('{m}')>",
    '<scr<script>ipt>alert("{m}")</scr</script>ipt>',
    '<<script>alert("{m}");//<</script>',
    '<svg/onload=alert("{m}")>',
    '<img src="x" onerror="&#97;lert(\'{m}\')">',
    "<a href=\"&#106;avascript:alert('{m}')\">{m}</a>",
    '\u003cscript\u003ealert("{m}")\u003c/script\u003e',
    '\uff1cscript\uff1ealert("{m}")\uff1c/script\uff1e',
    '<script type="text/javascript">alert("{m}")</script>',
    "<style>@import 'javascript:alert(\"{m}\")';</style>",
    "<div style=\"background:url(javascript:alert('{m}'))\">",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(\'{m}\')">',
    "<base href=\"javascript:alert('{m}')//\">",
    '</script><script>alert("{m}")</script>',
    '<!--<img src="--><img src=x onerror=alert("{m}")//">',
    "<noscript><p title=\"</noscript><img src=x onerror=alert('{m}')>\">",
    '"><svg onload=alert("{m}")>',
    '\u202e<img src=x onerror=alert("{m}")>',
    "<a href=\"  javascript:alert('{m}')\">{m}</a>",
    "<img src=x:alert({m}) onerror=eval(src)>",
    '<template><script>alert("{m}")</script></template>',
    '<a href="#" onclick="alert(\'{m}\')">{m}</a>',
)


def xss_payloads() -> list[tuple[str, str]]:
    """(marker, payload) pairs, at least 40."""
    return [(f"xss{n}", template.format(m=f"xss{n}")) for n, template in enumerate(XSS_TEMPLATES)]


URL_ATTRIBUTES = {"href", "src", "action", "formaction", "data", "xlink:href", "poster"}


class _Detector(HTMLParser):
    def __init__(self, markers: list[str]):
        super().__init__(convert_charrefs=True)
        self.markers = markers
        self.found: list[str] = []
        self.in_raw_text = False

    def _marked(self, text: str) -> list[str]:
        return [marker for marker in self.markers if marker in (text or "")]

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in {"script", "style"}:
            # json_script data (type application/json) is inert and escaped by Django.
            self.in_raw_text = attributes.get("type") != "application/json"
        if any(name.startswith("on") for name, _value in attrs):
            self.found += [f"<{tag} on…> {m}" for m in self._marked(str(attrs))]
        for name, value in attrs:
            value = value or ""
            if name in URL_ATTRIBUTES:
                compact = "".join(value.split()).lower()
                if compact.startswith(("javascript:", "data:", "vbscript:")):
                    self.found += [f"<{tag} {name}=javascript:> {m}" for m in self._marked(value)]
            if name == "style" and "javascript:" in value.lower():
                self.found += [f"<{tag} style> {m}" for m in self._marked(value)]
            if name == "content" and "javascript:" in value.lower():
                self.found += [f"<{tag} content> {m}" for m in self._marked(value)]
        if tag in {"base", "iframe", "object", "embed", "svg", "math", "details", "video"}:
            # srcdoc is a document of its own: the caller parses it separately.
            outer = [(name, value) for name, value in attrs if name != "srcdoc"]
            self.found += [f"<{tag}> {m}" for m in self._marked(str(outer))]

    def handle_endtag(self, tag):
        if tag in {"script", "style"}:
            self.in_raw_text = False

    def handle_data(self, data):
        if self.in_raw_text:
            self.found += [f"<script|style> {m}" for m in self._marked(data)]


def injected(html: str, markers: list[str]) -> list[str]:
    """Where, if anywhere, a marked payload became live markup in the page."""
    detector = _Detector(markers)
    detector.feed(html)
    detector.close()
    return detector.found


#: Payloads a browser itself leaves inert in any context (mangled tags, look-alike
#: characters) or whose mutation needs a real browser's parser to show (math).
INERT_BY_DESIGN = frozenset({"xss13", "xss24", "xss30"})
CONTEXTS = ("<div>{}</div>", '<a title="{}">x</a>', "<a title='{}'>x</a>", '<a href="{}">x</a>')
