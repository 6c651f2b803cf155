"""What lang=auto costs a page: identifying the language of a first read, and the second read where it differs.

Run from the repository root: .venv/bin/python -m bench.language_bench [--rounds 3]

Needs no services. One A4 page at 300 DPI per language (English, German, French, Spanish; DejaVu Sans, which
has their accents) is read by tesseract as the engine reads a page (hOCR, one thread), first with `eng` and
then in its own language; the identifier runs on the English read. Printed per page: tesseract's CPU time for
each read, the identifier's time (its first call in a fresh process, which loads the model, and a warm call),
OSD's time for comparison (the engine runs it only on pages read with low confidence), what auto chose, and
the word recall of each read against the page's true text, accents included.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from common.engine import hocr
from common.engine.language.identify import identify_languages
from common.engine.language.installed import installed_languages

TEXTS = {
    "eng": """Dear Sir or Madam, thank you for your enquiry of 12 March. We are pleased to send you our quotation
for the delivery of twelve office chairs. Prices exclude value added tax and remain valid until the end of May.
The council informs residents that the street between the town hall and the bridge will be closed from Monday.
Residents are asked to move their vehicles in good time. The works are expected to last three weeks; a path will
remain open for pedestrians. Invoice number 2024-118 for maintenance of the heating system on the ground floor.
Please transfer the amount within fourteen days to the account shown below. In spring the apple and cherry
trees blossom in our garden, and the birds come back from the south. The tenancy renews automatically for a
further year unless it is terminated in writing three months before it expires.""",
    "deu": """Sehr geehrte Damen und Herren, vielen Dank für Ihre Anfrage vom 12. März. Gerne übersenden wir Ihnen
unser Angebot für die Lieferung von zwölf Bürostühlen. Die Preise verstehen sich zuzüglich Mehrwertsteuer und
gelten bis Ende Mai. Die Gemeinde teilt mit, dass die Straße zwischen dem Rathaus und der Brücke ab Montag
gesperrt ist. Anwohner werden gebeten, ihre Fahrzeuge rechtzeitig umzuparken. Die Arbeiten dauern
voraussichtlich drei Wochen. Rechnung Nummer 2024-118 für Wartungsarbeiten an der Heizungsanlage im
Erdgeschoss. Bitte überweisen Sie den Betrag innerhalb von vierzehn Tagen. Im Frühjahr blühen in unserem
Garten die Äpfel und Kirschen, und die Vögel kehren aus dem Süden zurück. Der Mietvertrag verlängert sich
automatisch um ein weiteres Jahr, sofern er nicht drei Monate vor Ablauf schriftlich gekündigt wird.""",
    "fra": """Madame, Monsieur, nous avons bien reçu votre demande du 12 mars et nous vous remercions de l'intérêt
que vous portez à nos produits. Vous trouverez ci-joint notre devis pour la livraison de douze chaises de
bureau. La mairie informe les habitants que la rue située entre l'hôtel de ville et le pont sera fermée à
partir de lundi. Les riverains sont priés de déplacer leur véhicule. Facture numéro 2024-118 pour l'entretien
du système de chauffage au rez-de-chaussée. Merci de régler le montant dans un délai de quatorze jours. Au
printemps, les pommiers et les cerisiers fleurissent dans notre jardin et les oiseaux reviennent du sud. Le
bail est reconduit tacitement pour une année supplémentaire, sauf résiliation par écrit trois mois avant.""",
    "spa": """Estimados señores: agradecemos su consulta del 12 de marzo. Con mucho gusto les enviamos nuestra
oferta para el suministro de doce sillas de oficina. Los precios no incluyen el impuesto y son válidos hasta
finales de mayo. El ayuntamiento informa a los vecinos de que la calle entre la plaza mayor y el puente
permanecerá cerrada a partir del lunes. Factura número 2024-118 por el mantenimiento de la calefacción en la
planta baja. Les rogamos que abonen el importe en un plazo de catorce días. En primavera florecen los
manzanos y los cerezos de nuestro jardín, y los pájaros vuelven del sur. El contrato de alquiler se prorroga
automáticamente por un año más, salvo que se rescinda por escrito con tres meses de antelación.""",
}
_TOKEN = re.compile(r"\w+")
_ENV = dict(os.environ, OMP_THREAD_LIMIT="1")


def page_of(text: str, path: Path) -> None:
    """The text wrapped to the width of an A4 page at 300 DPI, one line every 100 pixels."""
    font = ImageFont.truetype("DejaVuSans.ttf", 44)
    page = Image.new("L", (2480, 3508), 255)
    draw = ImageDraw.Draw(page)
    line, row = "", 0
    for word in text.split():
        if draw.textlength(f"{line} {word}", font=font) > 2100:
            draw.text((180, 220 + row * 100), line, font=font, fill=0)
            line, row = word, row + 1
        else:
            line = f"{line} {word}".strip()
    draw.text((180, 220 + row * 100), line, font=font, fill=0)
    page.save(path, dpi=(300, 300))


def cpu_of_children(args: list[str]) -> float:
    """Seconds of CPU a program takes (user + system): steadier than wall time on a shared machine."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, check=True, capture_output=True, env=_ENV)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def read(image: Path, lang: str, rounds: int) -> tuple[str, float]:
    """The page's text as the engine's tesseract command gives it, and the median CPU seconds of `rounds` reads."""
    base = image.with_name(f"{image.stem}-{lang}")
    args = ["tesseract", str(image), str(base), "-l", lang, "--dpi", "300", "hocr"]
    seconds = statistics.median(cpu_of_children(args) for _ in range(rounds))
    return hocr.parse(base.with_suffix(".hocr").read_bytes()).text, seconds


def recall(found: str, truth: str) -> float:
    got, want = Counter(_TOKEN.findall(found.lower())), Counter(_TOKEN.findall(truth.lower()))
    return sum((got & want).values()) / max(1, sum(want.values()))


def cold_identify_ms(text_file: Path) -> float:
    """The identifier's first call in a fresh process: import, model load and one page (what a worker pays once)."""
    probe = ("import sys, time; t = time.perf_counter(); from common.engine.language.identify import identify_languages; "
             "identify_languages(open(sys.argv[1]).read(), frozenset({'eng', 'deu'}), 'eng'); "
             "print((time.perf_counter() - t) * 1000)")
    return float(subprocess.run([sys.executable, "-c", probe, str(text_file)], check=True, capture_output=True,
                                text=True).stdout.split()[-1])


def warm_identify_ms(text: str, installed: frozenset[str], calls: int = 200) -> float:
    identify_languages(text, installed, "eng")
    start = time.process_time()
    for _ in range(calls):
        identify_languages(text, installed, "eng")
    return (time.process_time() - start) / calls * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="tesseract reads per page and language (median)")
    args = parser.parse_args()
    installed = installed_languages()
    print(f"installed: {', '.join(sorted(installed))}; tesseract CPU s per read (median of {args.rounds}); "
          f"identifier ms per page")
    print(f"{'page':5} {'read eng':>9} {'OSD':>6} {'identify':>9} {'auto':>9} {'2nd read':>9} "
          f"{'auto cost':>10} {'recall eng':>11} {'recall own':>11}")
    with tempfile.TemporaryDirectory(prefix="language-bench-") as tmp:
        for lang, truth in TEXTS.items():
            image = Path(tmp) / f"{lang}.png"
            page_of(truth, image)
            first, first_s = read(image, "eng", args.rounds)
            osd_s = statistics.median(cpu_of_children(["tesseract", str(image), "-", "--psm", "0"])
                                      for _ in range(args.rounds))
            identify_ms = warm_identify_ms(first, installed)
            choice = identify_languages(first, installed, "eng")
            chosen = choice.lang if choice else "eng"
            second, second_s = read(image, chosen, args.rounds) if chosen != "eng" else (first, 0.0)
            cost = (identify_ms / 1000 + second_s) / first_s
            print(f"{lang:5} {first_s:9.2f} {osd_s:6.2f} {identify_ms:9.3f} {chosen:>9} {second_s:9.2f} "
                  f"{cost:+10.2%} {recall(first, truth):11.3f} {recall(second, truth):11.3f}", flush=True)
        text_file = Path(tmp) / "deu.txt"
        text_file.write_text(read(Path(tmp) / "deu.png", "eng", 1)[0])
        colds = [cold_identify_ms(text_file) for _ in range(3)]
        print(f"first call in a fresh process (import, model load, one page): {statistics.median(colds):.0f} ms "
              f"(median of 3)")


if __name__ == "__main__":
    main()
