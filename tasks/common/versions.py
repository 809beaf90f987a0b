"""Start-up check of the installed dependencies against the ranges that ``pyproject.toml`` declares.

A version outside the range (a user who forced ``transformers==5.0``, say) used to die deep in training with a
traceback (``TrainingArguments.__init__() got an unexpected keyword argument ...``); ``check_versions()`` turns it into
one line naming the package, the installed version and the range, before anything heavy is imported.

The ranges have one source, ``pyproject.toml``: read from the checkout's own file when the code runs from one (an
editable install's metadata is frozen at install time), else from the installed distribution's metadata, which pip
wrote from that same file.  ``docs/dependencies.md`` says why each floor is where it is; ``.ci/lowest`` installs the
floors and runs the tests against them.

Importable without torch or transformers (only the standard library and ``packaging``).
"""
from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .errors import UsageError

DISTRIBUTION = "ptv2-nlu"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"  # the checkout's, when running from one
# optional extras whose packages are checked whenever installed (a missing one is the PEFT methods' own error)
CHECKED_EXTRAS = ("peft",)
# set to 1 to get the line as a warning and go on (trying a release outside the range on purpose)
IGNORE_ENV = "PTV2_IGNORE_VERSIONS"


class IncompatibleVersions(UsageError):
    """An installed dependency is outside the range ``pyproject.toml`` declares (one line, exit code 2)."""


def declared_requirements() -> list[Requirement]:
    """Every requirement of ``ptv2-nlu`` (base and extras, markers kept), or [] when neither source is there."""
    texts = _from_pyproject(PYPROJECT)
    if texts is None:
        try:
            texts = metadata.requires(DISTRIBUTION) or []
        except metadata.PackageNotFoundError:
            texts = []
    return [Requirement(text) for text in texts]


def _from_pyproject(path: Path) -> list[str] | None:
    try:
        import tomllib  # Python 3.11+; on 3.10 the installed metadata is read instead
    except ImportError:
        return None
    try:
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    except (OSError, ValueError):
        return None
    if canonicalize_name(project.get("name", "")) != DISTRIBUTION:
        return None  # a pyproject.toml above an installed package, but not ours
    texts = list(project.get("dependencies", []))
    for extra, requirements in project.get("optional-dependencies", {}).items():
        for text in requirements:  # as the metadata spells them: the extra joins the requirement's own marker
            head, _, marker = text.partition(";")
            texts.append(f'{head}; ({marker.strip()}) and extra == "{extra}"' if marker.strip()
                         else f'{head}; extra == "{extra}"')
    return texts


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def applies(requirement: Requirement, extras: Iterable[str]) -> bool:
    """Whether ``requirement`` is a base dependency (on this interpreter) or one of ``extras``'."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": extra}) for extra in ("", *extras))


def problems(requirements: Iterable[Requirement], extras: Iterable[str] = CHECKED_EXTRAS,
             version_of: Callable[[str], str | None] | None = None) -> list[tuple[Requirement, str]]:
    """(requirement, installed version) for each installed package outside its declared range.

    Packages not installed are skipped: a missing base package fails at its import with its own message, and a
    missing optional one is the business of the methods that need it.  ``version_of``: the lookup (tests pass one)."""
    version_of = version_of or installed_version
    extras = tuple(extras)
    found, seen = [], set()
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name in seen or not applies(requirement, extras):
            continue
        seen.add(name)  # an extra repeating a package (peft in "peft" and "bench") states the same range
        installed = version_of(requirement.name)
        # pre-releases of an allowed version pass (a transformers dev build above the floor), local labels too
        if installed is not None and not requirement.specifier.contains(installed, prereleases=True):
            found.append((requirement, installed))
    return found


def check_versions(extras: Iterable[str] = CHECKED_EXTRAS) -> None:
    """Raise ``IncompatibleVersions`` (one line) if an installed dependency is outside its declared range.

    Call it at start-up, before torch, transformers or peft are imported.  With ``PTV2_IGNORE_VERSIONS=1`` the line
    goes to stderr as a warning instead, and the run goes on."""
    found = problems(declared_requirements(), extras)
    if not found:
        return
    wanted = " ".join(f"'{r.name}{r.specifier}'" for r, _ in found)
    line = ("; ".join(f"{r.name} {installed} is installed, {DISTRIBUTION} needs {r.name}{r.specifier}"
                      for r, installed in found)
            + f" (pip install {wanted}; docs/dependencies.md says why; {IGNORE_ENV}=1 runs anyway)")
    if os.environ.get(IGNORE_ENV, "") not in ("", "0"):
        print(f"warning: {line}", file=sys.stderr)
        return
    raise IncompatibleVersions(line)


def floors(names: Iterable[str]) -> list[str]:
    """``name==floor`` for each of ``names``: the lower bound its declared range states (``>=`` or ``~=``)."""
    wanted = {canonicalize_name(n): n for n in names}
    pins = {}
    for requirement in declared_requirements():
        name = canonicalize_name(requirement.name)
        if name in wanted and name not in pins:
            lower = [s.version for s in requirement.specifier if s.operator in (">=", "~=", "==")]
            if lower:
                pins[name] = f"{requirement.name}=={lower[0]}"
    missing = [wanted[n] for n in wanted if n not in pins]
    if missing:
        raise ValueError(f"no declared lower bound for {', '.join(missing)} in {DISTRIBUTION}'s requirements")
    return [pins[n] for n in wanted]


def main(argv: list[str] | None = None) -> None:
    """``python -m tasks.common.versions``: check, printing the one line and exiting 2 on a mismatch;
    ``--floors NAME...``: print the pins of the lowest declared versions (what ``.ci/lowest`` installs)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--floors"]:
        print(" ".join(floors(argv[1:])))
        return
    try:
        check_versions()
    except IncompatibleVersions as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    if not problems(declared_requirements()):  # (with PTV2_IGNORE_VERSIONS=1 a mismatch was only a warning)
        print("installed versions are within the declared ranges")


if __name__ == "__main__":
    main()
