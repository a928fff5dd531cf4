"""Thin sessions: each calls the package or its tests."""

import shutil

import nox

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "uv|virtualenv"


@nox.session
def matrix(session: nox.Session) -> None:
    """Run the matrix in matrix.toml (or the one given after --) and write its report."""
    session.install(".")
    session.run("sandbox", "run", *(session.posargs or ["matrix.toml"]))


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite: unit tests, then real TensorFlow end to end (virtualenvs,
    a Docker Engine, headless Chromium: installed here where missing)."""
    session.run("bash", "scripts/system-deps.sh", external=True)
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("-e", ".[lint,test]")  # the tests' dependencies too: mypy reads the tests' imports
    session.run("ruff", "check", "sandbox", "tests")
    # the in-cell agent (Python 3.6 syntax, excluded above): at least no undefined or shadowed names
    session.run("ruff", "check", "--isolated", "--target-version", "py37", "--select", "F821,F811,F823", "sandbox/agent")
    session.run("mypy", "sandbox", "tests")


@nox.session
def mutants(session: nox.Session) -> None:
    """Mutation testing (mutmut, configured in pyproject.toml) of the pure host
    modules by their fast unit tests, then the score per module. Not part of
    `tests`. `nox -s mutants -- --survivors` lists the surviving mutants (then
    `mutmut show NAME` shows one)."""
    session.install("-e", ".[test,mutants]")
    # from scratch: mutmut 3.8 keeps an earlier run's unmutated copy of a module added to only_mutate since
    shutil.rmtree("mutants", ignore_errors=True)
    session.run("mutmut", "run")  # one worker per core
    session.run("python", "scripts/mutation_score.py", *session.posargs)
