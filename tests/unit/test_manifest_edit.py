"""`manifest.edit.add_model`: a new `[models.NAME]` after the user's text, every byte of it kept."""

from __future__ import annotations

import tomllib

import pytest

from modelsync.errors import UsageError
from modelsync.manifest.edit import add_model

USER = """\
# comments stay
[settings]
target   =   "models"     # odd spacing stays too

[models.a]  # trailing note
source = 'org/a'
"""


def test_appends_after_the_untouched_text() -> None:
    """The text before the entry is the user's, byte for byte; quant is written when given."""
    new = add_model(USER, "b", "org/B-GGUF", "Q4_K_M", where="models.toml")
    assert new == USER + '\n[models.b]\nsource = "org/B-GGUF"\nquant = "Q4_K_M"\n'
    plain = add_model(USER.rstrip("\n"), "b", "org/B-GGUF", None, where="models.toml")
    assert plain == USER + '\n[models.b]\nsource = "org/B-GGUF"\n'
    assert add_model("", "b", "x/y", None, where="m") == '[models.b]\nsource = "x/y"\n'


def test_refuses_a_taken_name_naming_its_line() -> None:
    """A name already in the manifest is a usage error naming the file and line."""
    with pytest.raises(UsageError) as caught:
        add_model(USER, "a", "org/other", None, where="models.toml")
    assert caught.value.message == 'models.toml:5: a model named "a" already exists'


def test_inline_models_table_gets_the_entry_inside() -> None:
    """Models written as one inline table cannot take a `[models.b]` header: the entry goes
    into the inline table through tomlkit, the comment kept."""
    text = 'models = { a = { source = "org/a" } }  # mine\n'
    new = add_model(text, "b", "org/b", None, where="m")
    assert tomllib.loads(new)["models"] == {"a": {"source": "org/a"}, "b": {"source": "org/b"}}
    assert "# mine" in new


def test_crlf_file_keeps_its_line_ends() -> None:
    """A file with CRLF line ends gets the entry with CRLF too."""
    text = '[models.a]\r\nsource = "org/a"\r\n'
    new = add_model(text, "b", "org/b", None, where="m")
    assert new == text + '\r\n[models.b]\r\nsource = "org/b"\r\n'
