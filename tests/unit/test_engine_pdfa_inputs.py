"""Real-world PDFs through `output=pdfa`: each made PDF/A-2b passes veraPDF, or stays plain with a code and no claim.

The inputs carry what made files labelled PDF/A fail veraPDF before: /Interpolate on images, PDF/X and Photoshop
metadata with a PDF/X output intent, PDF/UA metadata, transparency (a soft-masked image, a page group), a PDF/A
claim of their own, print leftovers (optional content /AS, a form's PostScript, transfer functions); and what
cannot be mended in place: CMYK images. Each is built here with Pillow and pikepdf, read by the engine as a job
would be, then made PDF/A; veraPDF judges all the results in one run.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pytest
from PIL import Image, ImageCms

from common.engine.ocr import TesseractEngine
from common.engine.pdfa.make import archival, disclaim_file, srgb_profile
from common.engine.pdfa.result import PdfaResult
from common.engine.pdfa.rules import obstacle
from tests.conftest import Verapdf
from tests.support import render_page
from tests.unit.test_engine_quality_pdfa import LIMITS

LINE = ["Harbour office archive copy"]
SIZE = (1240, 400)  # a strip of a page at 300 dpi: enough for one line, quick to read

PDFX_XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:pdfx="http://ns.adobe.com/pdfx/1.3/"
  xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/" xmlns:pdf="http://ns.adobe.com/pdf/1.3/"
  pdfx:GTS_PDFXVersion="PDF/X-4" photoshop:ColorMode="3" pdf:Trapped="False">
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Harbour report</rdf:li></rdf:Alt></dc:title>
<photoshop:DocumentAncestors><rdf:Bag><rdf:li>xmp.did:0123</rdf:li></rdf:Bag></photoshop:DocumentAncestors>
</rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"""

PDFUA_XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
  xmlns:pdfuaid="http://www.aiim.org/pdfua/ns/id/"><pdfuaid:part>1</pdfuaid:part>
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Accessible report</rdf:li></rdf:Alt></dc:title>
</rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"""

# A PDF/A-1b claim, as an earlier archiving tool left it (properties as attributes).
PDFA1_XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/" pdfaid:part="1"
  pdfaid:conformance="B"/>
</rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"""


def page_pdf(mode: str = "L") -> pikepdf.Pdf:
    """A scanner's one-page PDF: the page image in `mode` (L grey, RGB, CMYK) at 300 dpi, no text layer."""
    buf = io.BytesIO()
    render_page(LINE, SIZE).convert(mode).save(buf, format="PDF", resolution=300)
    return pikepdf.open(io.BytesIO(buf.getvalue()))


def page_images(pdf: pikepdf.Pdf) -> list[pikepdf.Stream]:
    return [image for image in pdf.pages[0].obj.Resources.XObject.values() if image.Subtype == "/Image"]


def with_xmp(pdf: pikepdf.Pdf, xmp: str) -> None:
    pdf.Root.Metadata = pdf.make_stream(xmp.encode(), Type=pikepdf.Name.Metadata, Subtype=pikepdf.Name.XML)


def interpolated(pdf: pikepdf.Pdf) -> None:
    """The page image asks viewers to smooth it (/Interpolate true), as some scanners write."""
    for image in page_images(pdf):
        image.Interpolate = True


def pdfx(pdf: pikepdf.Pdf) -> None:
    """A PDF/X-4 export: PDF/X and trapping keys in DocInfo, pdfx and Photoshop properties in XMP, a GTS_PDFX
    output intent of its own profile, a transfer function in a graphics state."""
    pdf.docinfo.Title = "Harbour report"
    pdf.docinfo.GTS_PDFXVersion = "PDF/X-4"
    pdf.docinfo.GTS_PDFXConformance = "PDF/X-4"
    pdf.docinfo.Trapped = pikepdf.Name.False_
    pdf.docinfo.Company = "Harbour office"
    with_xmp(pdf, PDFX_XMP)
    lab = pikepdf.Stream(pdf, bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()), N=3)
    pdf.Root.OutputIntents = [pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.OutputIntent, S=pikepdf.Name.GTS_PDFX, OutputConditionIdentifier="Press",
        DestOutputProfile=lab))]
    resources = pdf.pages[0].obj.Resources
    resources.ExtGState = pikepdf.Dictionary(GS0=pikepdf.Dictionary(Type=pikepdf.Name.ExtGState,
                                                                      TR=pikepdf.Name.Identity))
    page = pdf.pages[0].obj
    page.Contents = pdf.make_stream(b"/GS0 gs " + page.Contents.read_bytes())


def pdfua(pdf: pikepdf.Pdf) -> None:
    """PDF/UA identification in XMP without the extension schema PDF/A asks for it; PDF 2.0 (Case.version)."""
    with_xmp(pdf, PDFUA_XMP)
    pdf.Root.MarkInfo = pikepdf.Dictionary(Marked=True)
    pdf.Root.ViewerPreferences = pikepdf.Dictionary(DisplayDocTitle=True)
    pdf.Root.Version = pikepdf.Name("/2.0")


def transparent(pdf: pikepdf.Pdf) -> None:
    """A colour stamp drawn through a soft mask (its own /Interpolate true), on a page with a transparency group."""
    stamp = Image.new("RGB", (64, 64), (200, 30, 30))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (8, 8, 56, 56))
    soft = pikepdf.Stream(pdf, mask.tobytes(), Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=64,
                          Height=64, ColorSpace=pikepdf.Name.DeviceGray, BitsPerComponent=8, Interpolate=True)
    image = pikepdf.Stream(pdf, stamp.tobytes(), Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=64,
                           Height=64, ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8, SMask=soft)
    page = pdf.pages[0].obj
    page.Resources.XObject.Stamp = image
    page.Contents = pdf.make_stream(page.Contents.read_bytes() + b"\nq 40 0 0 40 220 20 cm /Stamp Do Q")
    page.Group = pikepdf.Dictionary(Type=pikepdf.Name.Group, S=pikepdf.Name.Transparency,
                                    CS=pikepdf.Name.DeviceRGB)


def claims_pdfa_1b(pdf: pikepdf.Pdf) -> None:
    """Already claims PDF/A-1b (an archiving tool's output), and its image asks to be interpolated."""
    with_xmp(pdf, PDFA1_XMP)
    interpolated(pdf)


def drawing_leftovers(pdf: pikepdf.Pdf) -> None:
    """What veraPDF fails in drawings made for print: an optional-content configuration with /AS and no name, a
    form with PostScript beside it, a graphics state with a transfer function and a halftone origin, XMP on
    the page; and colour it accepts, left as it is: an ICC-based RGB image and a Lab one."""
    page = pdf.pages[0].obj
    layer = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.OCG, Name="Stamp"))
    pdf.Root.OCProperties = pikepdf.Dictionary(OCGs=[layer], D=pikepdf.Dictionary(ON=[layer], AS=[
        pikepdf.Dictionary(Event=pikepdf.Name.View, OCGs=[layer], Category=[pikepdf.Name.View])]))
    page.Resources.XObject.Form = pikepdf.Stream(pdf, b"0 0 1 rg 0 0 50 50 re f", Type=pikepdf.Name.XObject,
                                                 Subtype=pikepdf.Name.Form, BBox=[0, 0, 50, 50], OC=layer,
                                                 PS=pikepdf.Stream(pdf, b"0 0 50 50 rectfill"))
    icc = pikepdf.Stream(pdf, srgb_profile(), N=3)
    page.Resources.XObject.Icc = pikepdf.Stream(pdf, bytes(30 * 30 * 3), Type=pikepdf.Name.XObject,
                                                Subtype=pikepdf.Name.Image, Width=30, Height=30,
                                                BitsPerComponent=8, ColorSpace=[pikepdf.Name.ICCBased, icc])
    page.Resources.XObject.Lab = pikepdf.Stream(pdf, bytes(30 * 30 * 3), Type=pikepdf.Name.XObject,
                                                Subtype=pikepdf.Name.Image, Width=30, Height=30,
                                                BitsPerComponent=8, ColorSpace=[pikepdf.Name.Lab, pikepdf.Dictionary(
                                                    WhitePoint=[0.9505, 1, 1.089])])
    page.Resources.ExtGState = pikepdf.Dictionary(Print=pikepdf.Dictionary(TR2=pikepdf.Name.Identity, HTP=[0, 0]))
    page.Metadata = pdf.make_stream(PDFX_XMP.encode(), Type=pikepdf.Name.Metadata, Subtype=pikepdf.Name.XML)
    page.Contents = pdf.make_stream(page.Contents.read_bytes() + b"\nq /Print gs /Form Do Q"
                                    b" q 30 0 0 30 300 20 cm /Icc Do Q q 30 0 0 30 340 20 cm /Lab Do Q")


def nothing(pdf: pikepdf.Pdf) -> None:
    """As scanned."""


@dataclass(frozen=True)
class Case:
    mode: str
    change: Callable[[pikepdf.Pdf], None]
    code: str | None  # None: made PDF/A-2b
    version: str = ""  # the header the input is saved with, if not Pillow's


CASES = {
    "interpolate": Case("L", interpolated, None),
    "pdfx": Case("RGB", pdfx, None),
    "pdfua": Case("L", pdfua, None, version="2.0"),
    "transparency": Case("L", transparent, None),
    "claims pdfa-1b": Case("L", claims_pdfa_1b, None),
    "drawing leftovers": Case("RGB", drawing_leftovers, None),
    "cmyk": Case("CMYK", nothing, "pdfa_cmyk_colour"),
    "cmyk claiming pdfa-1b": Case("CMYK", claims_pdfa_1b, "pdfa_cmyk_colour"),
}


@dataclass(frozen=True)
class Made:
    path: Path
    result: PdfaResult
    verdict: str  # veraPDF's lines about this file


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, verapdf: Verapdf) -> dict[str, Made]:
    """Every case read by the engine and made PDF/A as a job that asked for it is, then judged by veraPDF at once."""
    root = tmp_path_factory.mktemp("pdfa-inputs")
    results: dict[str, tuple[Path, PdfaResult]] = {}
    for number, (name, case) in enumerate(CASES.items()):
        source, out = root / f"input-{number}.pdf", root / f"out-{number}"
        out.mkdir()
        with page_pdf(case.mode) as pdf:
            case.change(pdf)
            pdf.save(source, force_version=case.version)
        recognition = TesseractEngine(LIMITS).recognise(source, "application/pdf", "eng", lambda n: None, out)
        list(recognition)
        searchable = recognition.outputs.searchable_pdf
        assert searchable is not None
        results[name] = (searchable, archival(searchable))
    report = verapdf(*(path for path, _ in results.values()))
    assert report.returncode in (0, 1), report.stdout + report.stderr
    return {name: Made(path, result, _verdict_of(report.stdout, path)) for name, (path, result) in results.items()}


def _verdict_of(report: str, path: Path) -> str:
    """The PASS or FAIL line veraPDF's wrapper printed for `path`, with the broken rules under it."""
    found = re.search(rf"^(PASS|FAIL) {re.escape(str(path))}:.*?(?=^(?:PASS|FAIL|ERROR) |^\(veraPDF|\Z)", report,
                      re.M | re.S)
    assert found is not None, report
    return found.group(0)


def claim_of(path: Path) -> tuple[str | None, str | None]:
    with pikepdf.open(path) as pdf:
        meta = pdf.open_metadata()
        return meta.get("pdfaid:part"), meta.get("pdfaid:conformance")


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.code is None])
def test_a_mendable_input_is_made_pdfa_and_verapdf_passes_it(made: dict[str, Made], name: str) -> None:
    """/Interpolate, PDF/X and Photoshop metadata with a PDF/X intent, PDF/UA metadata, transparency, an older
    PDF/A claim, print leftovers in drawings: mended in place, labelled PDF/A-2b, and veraPDF finds it true."""
    case = made[name]
    assert case.result == PdfaResult(made=True)
    assert claim_of(case.path) == ("2", "B")
    assert case.verdict.startswith(f"PASS {case.path}: compliant with the PDF/A-2B"), case.verdict


@pytest.mark.parametrize("name", [name for name, case in CASES.items() if case.code is not None])
def test_an_input_that_cannot_be_mended_stays_plain_with_a_code_and_no_claim(made: dict[str, Made],
                                                                             name: str) -> None:
    """CMYK images (no CMYK output profile to describe them, and nothing here converts them): `pdfa: false`
    with its code and reason; the file claims no PDF/A at all, not even the PDF/A-1b its source claimed."""
    case = made[name]
    assert (case.result.made, case.result.code) == (False, CASES[name].code)
    assert case.result.reason == "an image is in CMYK colour"
    assert claim_of(case.path) == (None, None)
    assert case.verdict.startswith(f"FAIL {case.path}"), case.verdict


def test_pdfx_leftovers_are_gone_and_the_description_kept(made: dict[str, Made]) -> None:
    """DocInfo keeps its standard entries only (no GTS_PDFX*, Trapped or a producer's own), XMP has no pdfx or
    Photoshop property, one sRGB GTS_PDFA1 intent replaces the PDF/X one, and the title is the same in both."""
    with pikepdf.open(made["pdfx"].path) as pdf:
        assert set(pdf.docinfo.keys()) <= {"/Title", "/Author", "/Subject", "/Keywords", "/Creator", "/Producer",
                                           "/CreationDate", "/ModDate"}
        assert str(pdf.docinfo.Title) == "Harbour report" == pdf.open_metadata()["dc:title"]
        xmp = pdf.Root.Metadata.read_bytes()
        assert b"pdfx" not in xmp and b"photoshop" not in xmp
        [intent] = pdf.Root.OutputIntents
        assert intent.S == "/GTS_PDFA1" and intent.DestOutputProfile.read_bytes() == srgb_profile()


def test_the_pdfua_claim_is_dropped_and_the_version_is_pdf_17(made: dict[str, Made]) -> None:
    """No pdfuaid (an OCR layer is untagged, and PDF/A would want the schema declared) and a 1.7 header."""
    with pikepdf.open(made["pdfua"].path) as pdf:
        assert b"pdfuaid" not in pdf.Root.Metadata.read_bytes()
        assert pdf.pdf_version == "1.7" and pdf.open_metadata()["dc:title"] == "Accessible report"


def test_no_image_is_interpolated(made: dict[str, Made]) -> None:
    """/Interpolate is gone from the page image and from the soft mask's."""
    for name in ("interpolate", "transparency", "claims pdfa-1b"):
        with pikepdf.open(made[name].path) as pdf:
            images = [obj for obj in pdf.objects if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == "/Image"]
            assert images and not any("/Interpolate" in image for image in images), name


def test_a_plain_output_loses_the_pdfa_claim_of_its_source(tmp_path: Path) -> None:
    """`output=pdf` of a document that claimed PDF/A-1b: the text layer was laid over it unchecked, so the
    claim goes (rules/outputs.py calls disclaim_file); a PDF without one is left byte for byte."""
    claimed, plain = tmp_path / "claimed.pdf", tmp_path / "plain.pdf"
    with page_pdf() as pdf:
        pdf.save(plain)
        with_xmp(pdf, PDFA1_XMP)
        pdf.save(claimed)
    before = plain.read_bytes()
    assert disclaim_file(claimed) is True and claim_of(claimed) == (None, None)
    assert disclaim_file(plain) is False and plain.read_bytes() == before


@pytest.mark.parametrize("content, code", [
    (b"0 0 0 1 k 0 0 10 10 re f", "pdfa_cmyk_colour"),
    (b"/DeviceCMYK cs 0 0 0 1 sc 0 0 10 10 re f", "pdfa_cmyk_colour"),
    (b"BI /W 1 /H 1 /CS /CMYK /BPC 8 ID \x00\x00\x00\x00 EI", "pdfa_cmyk_colour"),
    (b"BI /W 1 /H 1 /CS /G /BPC 8 /I true ID \x00 EI", "pdfa_forbidden_content"),
    (b"1 0 0 rg 0 0 10 10 re f", None),
])
def test_device_cmyk_and_interpolated_inline_images_in_content_are_found(content: bytes, code: str | None) -> None:
    """What the page draws counts, not only its images: a CMYK colour operator or an inline image in CMYK, and
    an inline image asking to be interpolated (which cannot be mended without rewriting the content)."""
    with pikepdf.new() as pdf:
        pdf.add_blank_page()
        pdf.pages[0].obj.Contents = pdf.make_stream(content)
        found = obstacle(pdf)
        assert (found.code if found is not None else None) == code


def test_docinfo_and_xmp_agree_after_pdfa_the_xmp_winning(tmp_path: Path) -> None:
    """Where both have a value the XMP's is kept (its author list is not flattened), DocInfo fills what the XMP
    lacks, and DocInfo is then written from the XMP, so the two say the same."""
    path = tmp_path / "described.pdf"
    with page_pdf() as pdf:
        with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
            meta["dc:creator"] = ["Ann Harbour", "Bob Quay"]
            meta["dc:title"] = "Harbour report"
        pdf.docinfo.Title = "Draft title"
        pdf.docinfo.Subject = "Cargo counts"
        pdf.save(path)
    assert archival(path) == PdfaResult(made=True)
    with pikepdf.open(path) as pdf:
        meta = pdf.open_metadata()
        assert (meta["dc:title"], meta["dc:creator"], meta["dc:description"]) == (
            "Harbour report", ["Ann Harbour", "Bob Quay"], "Cargo counts")
        described = {key: str(value) for key, value in pdf.docinfo.items() if key not in ("/CreationDate", "/ModDate")}
        assert described == {"/Title": "Harbour report", "/Author": "Ann Harbour; Bob Quay", "/Subject": "Cargo counts"}
