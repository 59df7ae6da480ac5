"""HTML to PDF with fpdf2: pure Python (no system libraries), so `pip install` is enough.

fpdf2 lays out the HTML subset documents need — headings, paragraphs, bold/italic, lists,
tables, line breaks — not CSS. Text needs a Unicode TrueType font for anything past Latin-1
(Cyrillic names, "₽"): the first of `RELATA_PDF_FONT` / the usual DejaVu Sans locations that
exists is embedded; without one the core Helvetica is used and characters it cannot show
become "?". Images are accepted only as `data:` URIs: a template must not make the server
fetch a URL or read a file."""

from __future__ import annotations

import os
from pathlib import Path

from fpdf import FPDF
from fpdf.errors import FPDFException

from app.domain.shared.errors import ValidationError

MAX_PDF_BYTES = 5_000_000
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/Library/Fonts/DejaVuSans.ttf",
)


class DocumentRenderError(ValidationError):
    title, type_slug = "Document could not be rendered", "document-render"


def unicode_font() -> Path | None:
    configured = os.environ.get("RELATA_PDF_FONT")
    for candidate in ((configured,) if configured else ()) + FONT_CANDIDATES:
        path = Path(candidate)
        if path.is_file():
            return path
    return None


def _only_inline_images(src: str) -> str:
    if not src.startswith("data:image/"):
        raise DocumentRenderError(
            "images in documents must be data: URIs (the server fetches no URLs or files)",
            errors=[{"loc": ["template", "body"], "msg": f"image source {src[:80]!r} refused",
                     "type": "document_image"}])
    return src


def html_to_pdf(html: str, *, title: str) -> bytes:
    """The PDF of `html` (fpdf2's HTML subset), at most MAX_PDF_BYTES."""
    pdf = FPDF(format="A4")
    if "<title" not in html.lower():  # fpdf takes the title from the HTML otherwise
        pdf.set_title(title)
    pdf.set_creator("Relata")
    font = unicode_font()
    family = "helvetica"
    if font is not None:
        pdf.add_font("body", "", str(font))
        bold = font.with_name(font.stem + "-Bold" + font.suffix)
        pdf.add_font("body", "B", str(bold if bold.is_file() else font))
        for style in ("I", "BI"):  # a face fpdf can fake: the regular one
            pdf.add_font("body", style, str(font))
        family = "body"
    else:
        html = html.encode("latin-1", "replace").decode("latin-1")
    pdf.add_page()
    pdf.set_font(family, size=11)
    try:
        pdf.write_html(html, font_family=family, image_map=_only_inline_images,
                       warn_on_tags_not_matching=False, render_title_tag=False)
        data = bytes(pdf.output())
    except DocumentRenderError:
        raise
    except (FPDFException, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise DocumentRenderError(f"the document could not be laid out as a PDF: {exc}",
                                  errors=[{"loc": ["template", "body"], "msg": str(exc),
                                           "type": "document_render"}]) from exc
    if len(data) > MAX_PDF_BYTES:
        raise DocumentRenderError(f"the PDF exceeds {MAX_PDF_BYTES} bytes",
                                  errors=[{"loc": ["template", "body"], "msg": "too large",
                                           "type": "document_too_large"}])
    return data
