"""An invoice or a receipt (documents.Document) as an A4 PDF.

Made with fpdf2: pure Python with no system libraries (WeasyPrint needs Pango and Cairo, ReportLab is far
larger for what a one-page document needs), small and maintained. The text uses the PDF's built-in Helvetica
in the Windows-1252 encoding, so nothing is embedded, the file stays a few kilobytes, and the text of an
uncompressed file can be read in its bytes (what the tests do). The creation date is the document's date of
issue, so the same document renders to the same bytes.
"""

from __future__ import annotations

from fpdf import FPDF
from fpdf.fonts import FontFace

from ..money import format_usd
from .documents import Document, details, refund_rows, stamp_word, tone, totals

_INK = (28, 32, 36)
_MUTED = (96, 100, 108)
_ACCENT = (62, 99, 221)
_RULE = (220, 223, 228)
_HEAD_FILL = (243, 244, 247)
_TONES = {"good": (24, 121, 78), "bad": (196, 32, 48), "neutral": (96, 100, 108)}
_MARGIN = 18
_WIDTH = 210 - 2 * _MARGIN  # A4


def _text(value: str) -> str:
    """What Helvetica can show: Windows-1252, anything else as '?' (an address in another script)."""
    return value.encode("cp1252", "replace").decode("cp1252")


class _Sheet(FPDF):
    def __init__(self, doc: Document) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.doc = doc
        self.core_fonts_encoding = "cp1252"  # the bullets of "Visa •••• 4242", en dashes
        self.set_margins(_MARGIN, _MARGIN, _MARGIN)
        self.set_auto_page_break(auto=True, margin=24)

    def footer(self) -> None:
        self.set_y(-16)
        self.set_draw_color(*_RULE)
        self.line(_MARGIN, self.get_y(), 210 - _MARGIN, self.get_y())
        self.ln(2)
        self.set_font("helvetica", size=8)
        self.set_text_color(*_MUTED)
        seller = " \u00b7 ".join(self.doc.seller)
        self.cell(_WIDTH * 0.8, 5, _text(f"{seller} \u00b7 Amounts in US dollars (USD)."))
        self.cell(_WIDTH * 0.2, 5, f"Page {self.page_no()} of {{nb}}", align="R")


def render_pdf(doc: Document, *, compress: bool = True) -> bytes:
    """The document as PDF bytes (A4); `compress=False` leaves the page text readable in the bytes."""
    pdf = _Sheet(doc)
    pdf.set_compression(compress)
    pdf.set_creation_date(doc.issued_at)
    pdf.set_title(_text(f"{doc.title} {doc.number}"))
    pdf.set_author(_text(doc.seller[0]))
    pdf.set_creator("Tollgate")
    pdf.set_subject(_text(f"{doc.title} {doc.number} for {doc.buyer_email}"))
    pdf.add_page()
    _heading(pdf, doc)
    _parties(pdf, doc)
    _facts(pdf, doc)
    _lines(pdf, doc)
    _totals(pdf, doc)
    if doc.refunds:
        _refunds(pdf, doc)
    return bytes(pdf.output())


def _heading(pdf: FPDF, doc: Document) -> None:
    top = pdf.get_y()
    pdf.set_font("helvetica", "B", 20)
    pdf.set_text_color(*_ACCENT)
    pdf.cell(_WIDTH / 2, 10, _text(doc.seller[0]))
    pdf.set_font("helvetica", "B", 22)
    pdf.set_text_color(*_INK)
    pdf.cell(_WIDTH / 2, 10, doc.title.upper(), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=11)
    pdf.set_text_color(*_MUTED)
    pdf.cell(_WIDTH, 6, _text(doc.number), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(top + 22)


def _stamp(pdf: FPDF, doc: Document, y: float) -> None:
    """The status as a tilted stamp at the right of the facts: PAID, PAST DUE, REFUNDED... (none while open)."""
    word = stamp_word(doc)
    if word is None:
        return
    color = _TONES[tone(doc)]
    pdf.set_font("helvetica", "B", 15)
    width = pdf.get_string_width(word) + 10
    x = 210 - _MARGIN - width - 4
    with pdf.rotation(angle=8, x=x + width / 2, y=y + 5):
        pdf.set_draw_color(*color)
        pdf.set_text_color(*color)
        pdf.set_line_width(0.7)
        pdf.set_xy(x, y)
        pdf.cell(width, 10, word, border=1, align="C")
    pdf.set_line_width(0.2)


def _block(pdf: FPDF, x: float, y: float, width: float, heading: str, lines: tuple[str, ...]) -> float:
    pdf.set_xy(x, y)
    pdf.set_font("helvetica", "B", 8)
    pdf.set_text_color(*_MUTED)
    pdf.cell(width, 5, heading.upper(), new_x="LEFT", new_y="NEXT")
    pdf.set_text_color(*_INK)
    for i, line in enumerate(lines):
        pdf.set_font("helvetica", "B" if i == 0 else "", 10)
        pdf.multi_cell(width, 5, _text(line), new_x="LEFT", new_y="NEXT")
    return pdf.get_y()


def _parties(pdf: FPDF, doc: Document) -> None:
    top = pdf.get_y() + 4
    half = _WIDTH / 2
    buyer = "Bill to" if doc.kind == "invoice" else "Paid by"
    left = _block(pdf, _MARGIN, top, half - 4, "From", doc.seller)
    right = _block(pdf, _MARGIN + half, top, half, buyer, (doc.buyer_email, f"Account {doc.buyer_account_id}"))
    pdf.set_xy(_MARGIN, max(left, right) + 6)


def _facts(pdf: FPDF, doc: Document) -> None:
    top = pdf.get_y()
    _stamp(pdf, doc, top + 4)
    pdf.set_xy(_MARGIN, top)
    pdf.set_draw_color(*_RULE)
    for label, value in details(doc):
        pdf.set_font("helvetica", size=9)
        pdf.set_text_color(*_MUTED)
        pdf.cell(45, 6, label)
        pdf.set_font("helvetica", "B" if label == "Status" else "", 10)
        pdf.set_text_color(*(_TONES[tone(doc)] if label == "Status" else _INK))
        pdf.cell(_WIDTH - 45, 6, _text(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)


def _lines(pdf: FPDF, doc: Document) -> None:
    pdf.set_text_color(*_INK)
    pdf.set_draw_color(*_RULE)
    pdf.set_font("helvetica", size=10)
    heading = FontFace(emphasis="BOLD", color=_MUTED, fill_color=_HEAD_FILL, size_pt=9)
    with pdf.table(col_widths=(_WIDTH - 40, 40), text_align=("LEFT", "RIGHT"), headings_style=heading,
                   borders_layout="HORIZONTAL_LINES", line_height=7, padding=(1.5, 2), width=_WIDTH) as table:
        row = table.row()
        row.cell("Description")
        row.cell("Amount")
        for line in doc.lines:
            row = table.row()
            row.cell(_text(line.description))
            row.cell(format_usd(line.amount_micros))
    pdf.ln(3)


def _totals(pdf: FPDF, doc: Document) -> None:
    rows = totals(doc)
    label_x = _MARGIN + _WIDTH - 100
    for i, (label, value) in enumerate(rows):
        last = i == len(rows) - 1
        pdf.set_x(label_x)
        pdf.set_font("helvetica", "B" if last else "", 11 if last else 10)
        pdf.set_text_color(*(_INK if last else _MUTED))
        pdf.cell(60, 7, label, align="R")
        pdf.set_text_color(*_INK)
        pdf.cell(40, 7, value, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)


def _refunds(pdf: FPDF, doc: Document) -> None:
    pdf.set_font("helvetica", "B", 11)
    pdf.set_text_color(*_INK)
    pdf.cell(_WIDTH, 8, "Refunds", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", size=10)
    heading = FontFace(emphasis="BOLD", color=_MUTED, fill_color=_HEAD_FILL, size_pt=9)
    with pdf.table(col_widths=(50, _WIDTH - 90, 40), text_align=("LEFT", "LEFT", "RIGHT"), headings_style=heading,
                   borders_layout="HORIZONTAL_LINES", line_height=7, padding=(1.5, 2), width=_WIDTH) as table:
        row = table.row()
        for title in ("Date", "What", "Amount"):
            row.cell(title)
        for date, what, amount in refund_rows(doc):
            row = table.row()
            for value in (date, what, amount):
                row.cell(value)
