"""The start-up version check (tasks/common/versions.py): an installed dependency outside the range pyproject.toml
declares is one line naming the package, the installed and the required version; the floors it reads are the ones
.ci/lowest installs and docs/dependencies.md explains."""
from __future__ import annotations

from pathlib import Path

import pytest

from tasks.common import versions
from tasks.common.errors import UsageError

REPO = Path(__file__).resolve().parents[3]
CHECKED = ("torch", "transformers", "peft", "datasets", "accelerate")


def floors() -> dict[str, str]:
    return dict(pin.split("==") for pin in versions.floors(CHECKED))


def lookup(monkeypatch, **overrides: str | None) -> None:
    """The five checked packages installed at their floors (the others: not installed), except ``overrides``
    (None: not installed)."""
    installed = floors()
    installed.update({name.replace("_", "-"): version for name, version in overrides.items()})
    monkeypatch.setattr(versions, "installed_version", lambda name: installed.get(name))
    monkeypatch.delenv(versions.IGNORE_ENV, raising=False)


def test_the_floors_come_from_pyproject():
    assert versions.PYPROJECT == REPO / "pyproject.toml"
    pins = floors()
    assert set(pins) == set(CHECKED)
    assert all(version[0].isdigit() for version in pins.values())


def test_every_package_at_its_floor_passes(monkeypatch):
    lookup(monkeypatch)
    versions.check_versions()


def test_a_release_below_the_floor_is_one_line_naming_package_installed_and_range(monkeypatch):
    lookup(monkeypatch, transformers="5.0.0")
    with pytest.raises(versions.IncompatibleVersions) as caught:
        versions.check_versions()
    line = str(caught.value)
    assert "\n" not in line
    assert "transformers 5.0.0 is installed, ptv2-nlu needs transformers" in line
    assert f">={floors()['transformers']}" in line
    assert isinstance(caught.value, UsageError)  # exit_on_bad_input prints it as one line, exit code 2


def test_a_release_above_the_range_is_refused_too(monkeypatch):
    lookup(monkeypatch, transformers="6.0.0")
    with pytest.raises(versions.IncompatibleVersions, match=r"transformers 6\.0\.0 is installed.*<6"):
        versions.check_versions()


def test_several_mismatches_are_still_one_line(monkeypatch):
    lookup(monkeypatch, accelerate="1.3.0", datasets="2.21.0")
    with pytest.raises(versions.IncompatibleVersions) as caught:
        versions.check_versions()
    line = str(caught.value)
    assert "\n" not in line and "accelerate 1.3.0 is installed" in line and "datasets 2.21.0 is installed" in line


def test_a_local_build_label_and_a_dev_build_above_the_floor_pass(monkeypatch):
    lookup(monkeypatch, torch=floors()["torch"] + "+cpu", transformers="5.99.0.dev0")
    versions.check_versions()


def test_peft_is_optional_but_checked_when_installed(monkeypatch):
    lookup(monkeypatch, peft=None)
    versions.check_versions()
    lookup(monkeypatch, peft="0.13.0")
    with pytest.raises(versions.IncompatibleVersions, match=r"peft 0\.13\.0 is installed"):
        versions.check_versions()


def test_a_missing_base_package_is_left_to_its_import(monkeypatch):
    lookup(monkeypatch, datasets=None)
    versions.check_versions()


def test_the_override_warns_and_goes_on(monkeypatch, capsys):
    lookup(monkeypatch, transformers="5.0.0")
    monkeypatch.setenv(versions.IGNORE_ENV, "1")
    versions.check_versions()
    assert capsys.readouterr().err.startswith("warning: transformers 5.0.0 is installed")


def test_the_installed_metadata_is_read_when_there_is_no_checkout(monkeypatch, tmp_path):
    monkeypatch.setattr(versions, "PYPROJECT", tmp_path / "pyproject.toml")  # absent: e.g. a wheel install
    monkeypatch.setattr(versions.metadata, "requires", lambda name: ["transformers<6,>=5.24.0",
                                                                     'peft>=0.20.0; extra == "peft"',
                                                                     'fastapi>=0.110; extra == "serve"'])
    monkeypatch.setattr(versions, "installed_version", lambda name: {"transformers": "5.3.0", "peft": "0.13.0",
                                                                     "fastapi": "0.1"}.get(name))
    found = {r.name: v for r, v in versions.problems(versions.declared_requirements())}
    assert found == {"transformers": "5.3.0", "peft": "0.13.0"}  # the serve extra is not checked by default


def test_the_check_runs_without_torch_or_transformers():
    """It runs at start-up, before the libraries it checks are imported (a too old one may fail at import)."""
    import subprocess
    import sys

    code = ("import sys; from tasks.common import versions; versions.check_versions(); "
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'datasets', 'accelerate') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_docs_name_every_floor():
    text = (REPO / "docs" / "dependencies.md").read_text()
    for name, version in floors().items():
        assert f"{name} {version}" in text, f"docs/dependencies.md does not name the floor {name} {version}"
