"""docs/cli.md is generated from the click commands and must match them."""

import importlib.util

from conftest import REPO


def _generator():
    spec = importlib.util.spec_from_file_location("generate_cli_reference", REPO / "docs" / "generate_cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_reference_is_up_to_date():
    """A command, option or help text changed without regenerating docs/cli.md fails here."""
    gen = _generator()
    committed = (REPO / "docs" / "cli.md").read_text()
    assert committed == gen.render(), (
        "docs/cli.md is out of date with the click commands: run `python docs/generate_cli_reference.py` "
        "and commit docs/cli.md")


def test_cli_reference_documents_every_command_and_exit_code():
    """Each registered command has a section; each EXIT_* code of tapas_opt/errors.py is listed."""
    from tapas_opt import errors
    from tapas_opt.cli import main

    gen = _generator()
    text = gen.render()
    for name in main.commands:
        assert f"## `tapas-opt {name}`" in text
    codes = gen.exit_codes()
    assert {n: v for n, v, _ in codes} == {n: getattr(errors, n) for n in dir(errors) if n.startswith("EXIT_")}
    assert all(doc for _, _, doc in codes)
