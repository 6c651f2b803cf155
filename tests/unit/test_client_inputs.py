"""What `ocr upload` takes from its arguments, where results are saved, and where it finds the service."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocr_pipeline_client import settings
from ocr_pipeline_client.batch import output_names, targets
from ocr_pipeline_client.inputs import BadPath, Input, expand


def test_a_folder_is_walked_recursively_for_documents_only(tmp_path: Path) -> None:
    """Documents in sub-folders are found, named relative to the folder; notes and hidden files are not."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".cache").mkdir()
    for name in ["one.pdf", "a/two.PNG", "a/b/three.tiff", "notes.txt", ".hidden.png", ".cache/four.png"]:
        (tmp_path / name).write_bytes(b"x")
    assert [i.name for i in expand([str(tmp_path)])] == ["a/b/three.tiff", "a/two.PNG", "one.pdf"]


def test_a_named_file_is_sent_whatever_its_suffix_and_only_once(tmp_path: Path) -> None:
    """The service decides the type from the bytes, so a named file is not filtered; repeats are dropped."""
    (tmp_path / "scan.dat").write_bytes(b"x")
    found = expand([str(tmp_path / "scan.dat"), str(tmp_path / "scan.dat"), str(tmp_path / "*.dat")])
    assert found == [Input(tmp_path / "scan.dat", "scan.dat")]


def test_globs_expand_recursively(tmp_path: Path) -> None:
    (tmp_path / "x" / "y").mkdir(parents=True)
    (tmp_path / "x" / "y" / "deep.pdf").write_bytes(b"x")
    (tmp_path / "top.pdf").write_bytes(b"x")
    assert [i.name for i in expand([f"{tmp_path}/**/*.pdf"])] == ["top.pdf", "deep.pdf"]


def test_results_of_an_earlier_run_are_left_out_of_folders_and_globs_but_not_when_named(tmp_path: Path) -> None:
    """`upload scans/ --out scans/` run again does not send scans/scan.ocr.pdf as a new document; named, it is."""
    for name in ["scan.pdf", "scan.ocr.pdf", "other.OCR.PDF"]:
        (tmp_path / name).write_bytes(b"x")
    skipped: list[Path] = []
    assert [i.name for i in expand([str(tmp_path)], skipped)] == ["scan.pdf"]
    assert sorted(p.name for p in skipped) == ["other.OCR.PDF", "scan.ocr.pdf"]
    assert [i.name for i in expand([f"{tmp_path}/*.pdf"])] == ["scan.pdf"]
    assert [i.name for i in expand([str(tmp_path / "scan.ocr.pdf")])] == ["scan.ocr.pdf"]


def test_results_are_saved_under_names_no_original_has(tmp_path: Path) -> None:
    """text, searchable PDF and hOCR of `scan.pdf` are scan.txt, scan.ocr.pdf and scan.hocr: never scan.pdf."""
    paths = targets(tmp_path, "a/scan", ("text", "searchable_pdf", "hocr"))
    assert paths == {"text": tmp_path / "a/scan.txt", "searchable_pdf": tmp_path / "a/scan.ocr.pdf",
                     "hocr": tmp_path / "a/scan.hocr"}


@pytest.mark.parametrize(("argument", "says"), [
    ("missing.pdf", "no such file or folder: "), ("*.nothing", "no file matches "), ("empty", "no document in folder "),
])
def test_a_bad_argument_is_refused_before_anything_is_sent(tmp_path: Path, argument: str, says: str) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadPath, match=says):
        expand([str(tmp_path / argument)])


def test_results_keep_their_names_unless_two_would_collide() -> None:
    """`a/scan.pdf` saves as `a/scan.*`; `x.pdf` and `x.png` side by side keep their suffixes to stay apart."""
    items = [Input(Path(n), n) for n in ["a/scan.pdf", "x.pdf", "x.png", "y.jpg"]]
    assert output_names(items) == ["a/scan", "x.pdf", "x.png", "y"]


def test_flags_beat_the_environment_which_beats_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('url = "http://file:1"\napi_key = "file-key"\n')
    env = {"OCR_CONFIG": str(config)}
    assert settings.load(None, env) == settings.ClientSettings("http://file:1", "file-key")
    env.update(OCR_URL="http://env:2/", OCR_API_KEY="env-key")
    assert settings.load(None, env) == settings.ClientSettings("http://env:2", "env-key")
    assert settings.load("https://flag:3", env).url == "https://flag:3"


def test_the_default_config_file_is_under_xdg_config_home(tmp_path: Path) -> None:
    (tmp_path / "ocr").mkdir()
    (tmp_path / "ocr" / "config.toml").write_text('url = "http://from-xdg:8080"\n')
    assert settings.load(None, {"XDG_CONFIG_HOME": str(tmp_path)}) == settings.ClientSettings("http://from-xdg:8080",
                                                                                             None)


@pytest.mark.parametrize(("env", "says"), [
    ({}, "no service URL"), ({"OCR_URL": "127.0.0.1:8080"}, "must start with http"),
    ({"OCR_CONFIG": "/nonexistent/ocr.toml"}, "not a file"),
])
def test_missing_or_malformed_settings_say_what_to_set(tmp_path: Path, env: dict[str, str], says: str) -> None:
    with pytest.raises(settings.SettingsMissing, match=says):
        settings.load(None, {"XDG_CONFIG_HOME": str(tmp_path), **env})
