"""`ocr`: the command-line client. Parses arguments, finds the service, runs a command, maps failures to exits.

Exit codes: 0 everything asked for completed; 1 a job failed, a file was refused or unreadable, a result would
have replaced a file (output_exists), or the service could not be reached or refused the key; 2 a usage error
(bad option, a path that is not there, no URL); 130 interrupted (the jobs keep running)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import metadata

from ocr_pipeline_client import commands
from ocr_pipeline_client.batch import OUTPUT_NAMES as OUTPUTS
from ocr_pipeline_client.errors import AuthenticationFailed, ClientError, Unreachable
from ocr_pipeline_client.inputs import BadPath, Unreadable
from ocr_pipeline_client.settings import SettingsMissing, config_path

# The name the client is installed under (client/pyproject.toml); its import name is ocr_pipeline_client.
DISTRIBUTION = "ocr-pipeline-client"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EPILOG = """\
The service and key come from --url / OCR_URL and OCR_API_KEY, or from a TOML file with `url` and `api_key`
(OCR_CONFIG, default ~/.config/ocr/config.toml). Where a command reads a result, ID is a job id or a document id
(as `ls` prints it: the document's current job). Results never replace a file: an existing name is refused
(output_exists) unless --force. Off a terminal (or with -q), stdout carries ids (or saved paths) alone, one a
line; everything else goes to stderr. Exit codes: 0 all completed, 1 something failed (its code is printed),
2 usage, 130 interrupted (jobs keep running)."""


def client_version() -> str:
    """The installed client distribution's version, or `unknown` when run from a bare tree."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def _add_global_options(parser: argparse.ArgumentParser, after_command: bool) -> None:
    """--url, --json and -q, taken before the command and after it. After it their defaults are SUPPRESS, so
    an option given before the command is not reset by the command's parser."""
    def default(value: object) -> object:
        return argparse.SUPPRESS if after_command else value

    parser.add_argument("--url", default=default(None),
                        help="the service's gateway URL (default: OCR_URL, then the config file)")
    parser.add_argument("--json", action="store_true", default=default(False),
                        help="print JSON for scripts instead of text")
    parser.add_argument("-q", "--quiet", action="store_true", default=default(False),
                        help="ids (or saved paths) alone on stdout, as off a terminal; status: the state alone")


def build_parser(prog: str = "ocr") -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    _add_global_options(common, after_command=True)

    parser = argparse.ArgumentParser(prog=prog, description="Upload documents for OCR, follow them, fetch results.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {client_version()}")
    _add_global_options(parser, after_command=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:  # noqa: A002 (argparse's word)
        return sub.add_parser(name, help=help, description=help, parents=[common], epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    up = command("upload", "upload files, folders (recursively) and glob patterns; optionally wait and save results")
    up.add_argument("files", nargs="+", metavar="FILE",
                    help="a file, a folder or a quoted glob ('scans/**/*.pdf'); folders and globs leave out "
                         "*.ocr.pdf, the results of an earlier run")
    up.add_argument("--lang", help="tesseract language(s), e.g. deu+eng, or auto (default: the service's)")
    up.add_argument("--wait", action="store_true", help="follow the jobs with progress bars until they finish")
    _add_saving(up, "with --wait: save each completed document's results under DIR (implies --wait)")
    up.add_argument("--parallel", type=_positive, default=4, metavar="N", help="uploads at a time (default 4)")
    up.add_argument("--callback-url", metavar="URL",
                    help="the service POSTs a signed job.completed / job.failed event here when each job ends")
    up.add_argument("--pdfa", dest="output", action="store_const", const="pdfa",
                    help="make the searchable PDFs PDF/A-2b (default: the service's OUTPUT_PDFA)")

    st = command("status", "show a job's state and progress")
    st.add_argument("job", metavar="ID", help="a job id, or a document id (its current job)")

    wt = command("wait", "follow jobs until they finish (e.g. after an interrupted upload --wait)")
    wt.add_argument("jobs", nargs="+", metavar="ID", help="job ids, or document ids (their current jobs)")
    _add_saving(wt, "save each completed job's results under DIR")

    tx = command("text", "print a completed job's text")
    tx.add_argument("job", metavar="ID", help="a job id, or a document id (its current job)")
    tx.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    _add_force(tx)

    get = command("get", "download a completed job's searchable PDF or hOCR")
    get.add_argument("job", metavar="ID", help="a job id, or a document id (its current job)")
    kind = get.add_mutually_exclusive_group(required=True)
    kind.add_argument("--pdf", dest="output", action="store_const", const="searchable_pdf",
                      help="the searchable PDF")
    kind.add_argument("--hocr", dest="output", action="store_const", const="hocr", help="the hOCR file")
    get.add_argument("-o", "--output-file", metavar="FILE",
                     help="where to save (default: the document's name with .ocr.pdf or .hocr, in the current "
                          "folder; - for standard output)")
    _add_force(get)

    ls = command("ls", "list documents, newest first")
    _add_filters(ls)

    se = command("search", "find documents by words in their recognised text")
    se.add_argument("query", metavar="QUERY", help="words that must all occur (3 or more letters each)")
    _add_filters(se)

    rp = command("reprocess", "OCR a document again (e.g. in another language); prints the new job's id")
    rp.add_argument("document", metavar="ID", help="a document id, or the id of one of its jobs")
    rp.add_argument("--lang", help="tesseract language(s), e.g. deu+eng (default: the service's)")

    rm = command("rm", "delete documents and everything made from them")
    rm.add_argument("documents", nargs="+", metavar="DOC", help="a document id (see ls)")
    return parser


def _add_force(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="replace files that exist (never done without it)")


def _add_saving(parser: argparse.ArgumentParser, help: str) -> None:  # noqa: A002
    parser.add_argument("--out", metavar="DIR", help=help)
    parser.add_argument("--outputs", default="text,pdf,hocr", type=_outputs, metavar="LIST",
                        help="what --out saves, of text,pdf,hocr (default: all three)")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="stop waiting after this long")
    _add_force(parser)


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", choices=["pending", "processing", "completed", "failed"])
    parser.add_argument("--type", dest="content_type", metavar="MEDIA", help="application/pdf, or a family: image/*")
    parser.add_argument("--name", dest="filename", metavar="TEXT", help="part of the file name")
    parser.add_argument("--from", dest="date_from", metavar="DATE", help="created on or after (2026-01-31)")
    parser.add_argument("--to", dest="date_to", metavar="DATE", help="created up to (a date includes its day)")
    parser.add_argument("--oldest-first", action="store_true", help="oldest first instead of newest")
    parser.add_argument("--owner", metavar="KEY_ID", help="admin keys: one owner's documents")
    parser.add_argument("--limit", type=_positive, default=20, metavar="N", help="per page (default 20, at most 100)")
    parser.add_argument("--all", action="store_true", help="every matching document, following the cursors")


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def _outputs(value: str) -> tuple[str, ...]:
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(OUTPUTS)}")
    return tuple(OUTPUTS[n] for n in names)


def main(argv: Sequence[str] | None = None, prog: str = "ocr") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        return commands.run(args)
    except (SettingsMissing, BadPath) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Unreadable as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except commands.Interrupted as e:
        print(f"\n{prog}: interrupted; the jobs keep running. Resume with:\n  {prog} wait {' '.join(e.job_ids)}"
              f"{e.resume_options}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except AuthenticationFailed as e:
        print(f"{prog}: error: the service refused the API key ({e.code}: {e.message}); set OCR_API_KEY or "
              f"api_key in {config_path(os.environ)}", file=sys.stderr)
        return EXIT_FAILED
    except Unreachable as e:
        print(f"{prog}: error: {e.message}", file=sys.stderr)
        return EXIT_FAILED
    except ClientError as e:
        print(f"{prog}: error: {e.code}: {e.message}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        return EXIT_FAILED  # `ocr ls | head`: the reader left; nothing to report
