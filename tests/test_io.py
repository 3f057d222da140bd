"""Reading a competition's files: what a CSV that polars cannot parse is told as."""

from __future__ import annotations

import pytest

from kit import cli
from kit.errors import InputError
from kit.io import read_table


def test_a_quote_inside_an_unquoted_field_is_named_with_its_line_and_the_fix(tmp_path):
    """A height written 5'9" (pandas reads it as text; polars starts a quoted field there): the
    file is not damaged, so the message names the line and the field instead."""
    path = tmp_path / "train.csv"
    path.write_text(
        'id,name,height,y\n1,"Smith, ""Jo""",5.5,0\n2,"two\nlines",6,1\n3,Lee,5\'9",1\n4,Ann,6,0\n'
    )
    with pytest.raises(InputError) as err:
        read_table(path)
    message = str(err.value)
    assert "line 5 has a double quote inside a field that is not enclosed in quotes" in message
    assert "'5\\'9\"'" in message and '"5\'9"""' in message and "download it again" not in message


def test_a_damaged_csv_without_a_stray_quote_keeps_the_general_message(tmp_path, capsys):
    path = tmp_path / "data"
    path.mkdir()
    (path / "train.csv").write_text('id,x,y\n1,"open,2,0\n2,3,1\n')
    (path / "test.csv").write_text("id,x\n3,4\n")
    (path / "sample_submission.csv").write_text("id,y\n3,0\n")
    assert cli.main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "could not be parsed" in err
