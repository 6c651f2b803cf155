"""The quality bench's pages: real prose found on the machine, degradations that repeat exactly, honest scores."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageChops

from bench import corpus
from bench.quality_bench import PAGE_TYPES, character_error_rate, make_samples, word_recall

DPI = 100  # small pages keep these tests fast; the bench renders at 300 and 200


def page(text: str = "The quick brown fox jumps over the lazy dog.\nSecond line of the page.") -> Image.Image:
    return corpus.render_page(text, DPI, corpus.load_font(DPI))


def test_rendered_page_is_a4_gray_at_its_resolution() -> None:
    """A rendered page is A4 in pixels at its DPI, gray, black ink on white, and says its DPI."""
    image = page()
    assert image.mode == "L"
    assert image.size == (827, 1169)
    assert image.info["dpi"] == (DPI, DPI)
    assert image.getextrema() == (0, 255)


@pytest.mark.parametrize("kind", ["clean", *corpus.KINDS])
def test_degradation_repeats_exactly_for_a_seed(kind: str) -> None:
    """The same page, kind and seed give the same pixels, so two runs of the bench read the same scans."""
    first, second = corpus.degrade(page(), kind, seed=3), corpus.degrade(page(), kind, seed=3)
    assert first.tobytes() == second.tobytes()
    assert first.info["dpi"] == (DPI, DPI)


def test_noise_differs_between_seeds() -> None:
    """Another seed draws other noise: pages of one type are not copies of each other's grain."""
    one, two = corpus.degrade(page(), "noise", seed=1), corpus.degrade(page(), "noise", seed=2)
    assert ImageChops.difference(one, two).getbbox() is not None


def test_skew_turns_the_text_and_keeps_it_inside_the_page() -> None:
    """A 5-degree skew keeps the page size and white corners, and moves the ink."""
    lines = "\n".join(["word " * 14] * 34)
    straight = page(lines)
    turned = corpus.skew(straight, 5)
    assert turned.size == straight.size
    assert turned.getpixel((0, 0)) == 255 and turned.getpixel((turned.width - 1, turned.height - 1)) == 255
    assert ImageChops.difference(straight, turned).getbbox() is not None
    # No ink within a quarter inch of any edge: the margins hold the whole turned text block.
    assert _ink_within(turned, DPI // 4)


def _ink_within(image: Image.Image, edge: int) -> bool:
    box = ImageChops.invert(image).getbbox()
    assert box is not None
    return box[0] >= edge and box[1] >= edge and box[2] <= image.width - edge and box[3] <= image.height - edge


def test_coloured_ink_is_rgb_on_white() -> None:
    """Coloured kinds make an RGB page whose darkest pixel is the ink's colour and whose paper stays white."""
    red = corpus.degrade(page(), "red", seed=1)
    assert red.mode == "RGB"
    assert red.getpixel((0, 0)) == (255, 255, 255)
    assert corpus.INKS["red"] in {colour for _, colour in red.getcolors(1 << 16) or []}


def test_grey_sheet_lies_on_a_larger_white_bed() -> None:
    """The grey sheet is larger than A4 by the white bed around it, and its paper is grey."""
    scan = corpus.degrade(page(), "grey-sheet", seed=1)
    assert scan.width > 827 and scan.height > 1169
    assert scan.getpixel((1, 1)) == 255
    assert scan.getpixel((scan.width // 2, scan.height - DPI)) == 190


def test_unknown_degradation_is_refused_by_name() -> None:
    """A kind the corpus does not make is an error naming the kinds it does."""
    with pytest.raises(ValueError, match="skew5"):
        corpus.degrade(page(), "smudge", seed=1)


def test_lines_fit_the_text_width() -> None:
    """Wrapped lines never pass the width (a single word longer than it stands alone) and keep every word."""
    font = corpus.load_font(DPI)
    paragraphs = ["a fairly long paragraph of ordinary words " * 20, "short one"]
    lines = list(corpus.wrap(paragraphs, font, 400))
    assert all(font.getlength(line) <= 400 for line in lines)
    assert " ".join(lines).split() == " ".join(paragraphs).split()
    assert lines[-1] == "short one"


def test_english_prose_comes_from_the_licence_texts() -> None:
    """English pages are Debian's licence texts, each file once, as prose paragraphs."""
    prose = corpus.licence_prose()
    assert "GPL-3" in prose.sources and "GPL" not in prose.sources  # GPL is a link to GPL-3
    assert len(prose.paragraphs) > 100
    assert all(len(p.split()) >= 8 for p in prose.paragraphs)


def test_missing_manual_pages_say_which_package_brings_them(tmp_path: Path) -> None:
    """Without translated manual pages the error names the Debian package to install."""
    with pytest.raises(corpus.CorpusMissing, match="manpages-fr"):
        corpus.manual_prose("fr", "fra", folder=tmp_path)


def test_pages_of_one_language_share_text_across_types(tmp_path: Path) -> None:
    """Each type's page files are written, English types carry the same text, and a PDF type's raster is its JPEG."""
    types = [t for t in PAGE_TYPES if t.name in ("clean", "jpeg-40", "pdf-skew-3")]
    samples = make_samples(types, 1, 5, None, tmp_path)
    assert [s.path.suffix for s in samples] == [".png", ".jpg", ".pdf"]
    assert samples[2].raster.suffix == ".jpg" and samples[2].raster.read_bytes()[:2] == b"\xff\xd8"
    assert len({s.truth for s in samples}) == 1 and len(samples[0].truth.splitlines()) == 5


def test_character_error_rate_counts_edits_over_the_true_length() -> None:
    """One wrong character in ten is 0.1; whitespace runs and line breaks are not errors; a ligature is its letters."""
    assert character_error_rate("abcdefghij", "abcdefghij") == 0.0
    assert character_error_rate("abcdefghiX", "abcdefghij") == pytest.approx(0.1)
    assert character_error_rate("two\n  words", "two words") == 0.0
    assert character_error_rate("\ufb01ne", "fine") == 0.0


def test_word_recall_counts_each_true_word_once() -> None:
    """Recall is over the true words as a multiset: a word read once of twice counts once; case matters."""
    assert word_recall("the cat", "the cat the") == pytest.approx(2 / 3)
    assert word_recall("The", "the") == 0.0
