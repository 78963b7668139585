"""tests/report/page.py — what the report tests share: a result whose strings
try to break out of the page (markup, quotes, an event handler), and a reader
of the page's structure (its elements, attributes, text, table rows)."""
import copy
import html.parser


HOSTILE = '<img src=x onerror="alert(1)">"\'&amp;'


def hostile(doc):
    """A copy of doc where everything a page shows from the result carries
    markup, plus a saturated load generator core, a rate not kept, failed
    requests and a warning of each kind."""
    d = copy.deepcopy(doc)
    d["scenario_doc"] = dict(d.get("scenario_doc") or {}, purpose="purpose " + HOSTILE)
    d["host"] = dict(d.get("host") or {}, hostname="host" + HOSTILE, cpu_model="cpu" + HOSTILE)
    d["tools"] = dict(d.get("tools") or {}, loadgen="loadgen" + HOSTILE)
    s = d["series"][0]
    s["server"] = s["server"] + HOSTILE
    s["warnings"] = list(s.get("warnings") or []) + ["warning " + HOSTILE]
    s["errors"] = list(s.get("errors") or []) + ["error " + HOSTILE]
    s["version"] = "version" + HOSTILE
    s["command"] = ["cmd", HOSTILE]
    pt = next(p for p in s["points"] if p.get("median"))
    pt["median"] = dict(pt["median"], loadgen_core_busy=0.95, target_rps=pt["median"]["rps"] * 2,
                        failed=3)
    return d


class Page(html.parser.HTMLParser):
    """Every element (tag, attributes) in order, the text outside scripts and
    styles, and the per-level table's rows (data-server, data-level)."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.elements, self.texts, self.rows, self.scripts = [], [], [], []
        self._in = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag not in ("meta", "link", "br", "img", "input", "hr", "source", "wbr"):
            self._in.append(tag)
        if tag == "tr" and "data-server" in a and self._table == "levels":
            self.rows.append((a["data-server"], a["data-level"]))
        if tag == "table":
            self._table = a.get("id")

    _table = None

    def handle_endtag(self, tag):
        if self._in and self._in[-1] == tag:
            self._in.pop()
        if tag == "table":
            self._table = None

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        if self._in and self._in[-1] == "script":
            self.scripts.append(data)
        elif not (self._in and self._in[-1] == "style"):
            self.texts.append(data)

    @property
    def text(self):
        return "".join(self.texts)
