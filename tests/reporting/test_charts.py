"""Server-side SVG charts: well-formed, escaped, deterministic, readable without colour."""

import io
import re
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy

from reporting import charts

D = Decimal
SVG = "{http://www.w3.org/2000/svg}"
BUCKETS = ["Current", "1-30", "31-60", "61-90", "91-120", "Over 120"]


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 (our own output, parsed to check it)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    """The visible words of every <text> (a <title> inside one is the tooltip, not shown)."""
    return [
        (node.text or "") + "".join(child.tail or "" for child in node)
        for node in root.iter(f"{SVG}text")
    ]


def titles(root: ET.Element) -> list[str]:
    return [node.text or "" for node in root.iter(f"{SVG}title")]


def aging_chart(**kwargs) -> str:
    return charts.stacked_bar_chart(
        BUCKETS,
        [
            ("Strategic", [D("1000.00"), D("300.00"), D("0"), D("0"), D("0"), D("50.25")]),
            ("Standard", [D("500.00"), D("100.00"), D("200.00"), D("0"), D("0"), D("0")]),
        ],
        title=kwargs.pop("title", "Aging, EUR"),
        **kwargs,
    )


def test_stacked_bar_chart_is_well_formed_svg_with_a_title_and_description():
    root = parse(aging_chart(description="Open balances per bucket"))
    assert root.get("role") == "img"
    title_id, desc_id = root.get("aria-labelledby").split()
    assert root.find(f"{SVG}title").get("id") == title_id
    assert root.find(f"{SVG}title").text == "Aging, EUR"
    assert root.find(f"{SVG}desc").get("id") == desc_id
    assert root.find(f"{SVG}desc").text == "Open balances per bucket"
    assert root.get("viewBox") == "0 0 640 320"


def test_every_bar_segment_names_its_series_bucket_and_exact_value():
    root = parse(aging_chart())
    segment_titles = [t for t in titles(root) if " · " in t]
    # Zero amounts draw nothing; each non-zero amount is one segment.
    assert segment_titles == [
        "Strategic · Current: 1,000.00",
        "Standard · Current: 500.00",
        "Strategic · 1-30: 300.00",
        "Standard · 1-30: 100.00",
        "Standard · 31-60: 200.00",
        "Strategic · Over 120: 50.25",
    ]


def test_bar_totals_and_category_labels_are_written_on_the_chart():
    words = texts(parse(aging_chart()))
    for total in ["1,500.00", "400.00", "200.00", "0.00", "50.25"]:
        assert total in words
    for bucket in BUCKETS:
        assert bucket in words
    # The legend names each series, so colour is never the only key.
    assert "Strategic" in words and "Standard" in words


def test_series_differ_by_pattern_not_only_by_colour():
    root = parse(aging_chart())
    fills = {
        rect.find(f"{SVG}title").text.split(" · ")[0]: rect.get("fill")
        for rect in root.iter(f"{SVG}rect")
        if rect.find(f"{SVG}title") is not None
    }
    assert fills["Strategic"].startswith("#")  # solid
    match = re.fullmatch(r"url\(#(.+)\)", fills["Standard"])
    assert match, fills["Standard"]
    pattern = root.find(f".//{SVG}pattern[@id='{match.group(1)}']")
    assert pattern is not None
    # The pattern draws marks over the series colour.
    assert len(list(pattern)) >= 2


def test_segment_heights_are_proportional_to_the_amounts():
    svg = charts.stacked_bar_chart(
        ["A"], [("low", [D("100")]), ("high", [D("300")])], title="Proportions"
    )
    root = parse(svg)
    heights = {
        rect.find(f"{SVG}title").text.split(" · ")[0]: float(rect.get("height"))
        for rect in root.iter(f"{SVG}rect")
        if rect.find(f"{SVG}title") is not None
    }
    assert heights["high"] == pytest.approx(3 * heights["low"], rel=0.01)


def test_labels_are_escaped_and_control_characters_dropped():
    hostile = '<script>alert("x")</script> & Sons\x00\x07'
    svg = charts.stacked_bar_chart(
        [hostile, "ok"],
        [(hostile, [D("1"), D("2")])],
        title=hostile,
        description=hostile,
        links=['/admin/?a=1&b="2"', ""],
    )
    assert "<script>" not in svg
    root = parse(svg)  # would fail on a raw "<", "&" or a NUL
    clean = '<script>alert("x")</script> & Sons'
    assert root.find(f"{SVG}title").text == clean
    assert root.find(f"{SVG}desc").text == clean
    assert clean in texts(root)
    link = root.find(f".//{SVG}a")
    assert link.get("href") == '/admin/?a=1&b="2"'


@pytest.mark.parametrize(
    "make",
    [
        lambda title: charts.bar_chart(["a", "b"], [D("1.5"), D("-2")], title=title),
        lambda title: charts.line_chart(["Jan", "Feb"], [("s", [D("1"), D("2")])], title=title),
        lambda title: charts.stacked_bar_chart(["a"], [("s", [D("3")])], title=title),
    ],
)
def test_same_input_gives_the_same_svg_and_different_charts_get_different_ids(make):
    first, again, other = make("One"), make("One"), make("Two")
    assert first == again
    ids = {parse(svg).get("id") for svg in (first, other)}
    assert len(ids) == 2
    # Every id inside a chart starts with the chart's own id, so two charts on a page
    # never reference each other's patterns.
    root = parse(first)
    for node in root.iter():
        if node.get("id"):
            assert node.get("id").startswith(root.get("id"))


def test_lazy_translations_give_the_same_chart_each_time():
    def make():
        return charts.stacked_bar_chart(
            [gettext_lazy("Current")], [(gettext_lazy("Open"), [D("5")])], title=gettext_lazy("Age")
        )

    first = make()
    assert first == make()
    assert "Open · Current: 5.00" in titles(parse(first))


def test_bar_chart_writes_each_value_and_draws_negative_bars_below_zero():
    root = parse(
        charts.bar_chart(["up", "down"], [D("40.00"), D("-10.00")], title="Net", y_label="EUR")
    )
    words = texts(root)
    assert "40.00" in words and "-10.00" in words and "EUR" in words
    bars = {
        rect.find(f"{SVG}title").text: rect
        for rect in root.iter(f"{SVG}rect")
        if rect.find(f"{SVG}title") is not None
    }
    up, down = bars["up: 40.00"], bars["down: -10.00"]
    # The negative bar starts where the positive one ends (the zero line).
    zero = float(up.get("y")) + float(up.get("height"))
    assert float(down.get("y")) == pytest.approx(zero, abs=0.02)  # coordinates have 2 places
    assert float(up.get("height")) == pytest.approx(4 * float(down.get("height")), rel=0.01)


def test_line_chart_leaves_a_gap_for_missing_values_and_marks_each_point():
    root = parse(
        charts.line_chart(
            ["Jan", "Feb", "Mar", "Apr"],
            [
                ("DSO, count-back", [D("40.0"), None, D("42.5"), D("41.0")]),
                ("DSO, simple", [D("30.0"), D("31.0"), D("32.0"), D("33.0")]),
            ],
            title="DSO",
            value_format=charts.format_days,
        )
    )
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "series"]
    assert [g.get("aria-label") for g in groups] == ["DSO, count-back", "DSO, simple"]
    first, second = groups
    # Jan alone, then Mar-Apr: one polyline (a single point needs none).
    assert len(first.findall(f"{SVG}polyline")) == 1
    assert len(second.findall(f"{SVG}polyline")) == 1
    assert [t.text for t in first.iter(f"{SVG}title")] == [
        "DSO, count-back · Jan: 40.0",
        "DSO, count-back · Mar: 42.5",
        "DSO, count-back · Apr: 41.0",
    ]
    # Told apart without colour: different dash styles and marker shapes.
    assert first.find(f"{SVG}polyline").get("stroke-dasharray") is None
    assert second.find(f"{SVG}polyline").get("stroke-dasharray")
    assert first.find(f"{SVG}circle") is not None
    assert second.find(f"{SVG}rect") is not None


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="values"):
        charts.stacked_bar_chart(["a", "b"], [("s", [D("1")])], title="x")
    with pytest.raises(ValueError, match="labels"):
        charts.bar_chart(["a"], [D("1"), D("2")], title="x")
    with pytest.raises(ValueError, match="values"):
        charts.line_chart(["a", "b"], [("s", [D("1")])], title="x")


def test_empty_charts_still_render():
    for svg in (
        charts.stacked_bar_chart([], [], title="Nothing"),
        charts.bar_chart([], [], title="Nothing"),
        charts.line_chart([], [], title="Nothing"),
    ):
        assert parse(svg).find(f"{SVG}title").text == "Nothing"


def test_amounts_are_formatted_from_decimals_exactly():
    assert charts.format_amount(D("1234567.005")) == "1,234,567.01"  # half up, as the KPIs
    assert charts.format_amount(D("0.1") + D("0.2")) == "0.30"
    assert charts.format_amount(-5) == "-5.00"
    assert charts.format_days(D("45.25")) == "45.3"
    assert charts.format_compact(D("716212.60")) == "716k"
    assert charts.format_compact(D("2500000")) == "2.5M"
    assert charts.format_compact(D("0")) == "0"


def test_weasyprint_renders_the_charts_into_a_pdf():
    weasyprint = pytest.importorskip("weasyprint")
    pypdf = pytest.importorskip("pypdf")
    html = (
        "<html><body>"
        + aging_chart(title="Aging distribution, EUR")
        + charts.line_chart(["Jan", "Feb"], [("DSO", [D("41.0"), D("43.5")])], title="DSO trend")
        + "</body></html>"
    )
    pdf = weasyprint.HTML(string=html).write_pdf()
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "Aging distribution, EUR" in text
    assert "1,500.00" in text  # the Current bar's total
    assert "DSO trend" in text and "43.5" in text
