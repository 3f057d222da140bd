"""Reading a competition's files: a CSV polars cannot parse, numbers written with placeholders."""

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


def test_numbers_with_a_frequent_placeholder_stay_text_with_a_note_naming_na(tmp_path):
    """'?' in a quarter of a numeric column's rows is too many to be read as missing unasked (a
    few are), so the column stays text, and the note says which --na would read it as numbers."""
    import numpy as np
    import polars as pl
    from conftest import write_competition

    from kit.competition import discover

    root = write_competition(tmp_path / "c")
    for name in ("train.csv", "test.csv"):
        frame = pl.read_csv(root / name)
        rows = np.arange(frame.height)
        q = pl.Series("q", np.where(rows % 4 == 0, "?", (rows * 7 % 50).astype(str)))
        frame.with_columns(q).write_csv(root / name)
    comp = discover(root)
    assert comp.roles["q"] != "numeric"
    note = next(n for n in comp.notes if n.startswith("'q' is read as text"))
    assert "'?' in 25%" in note and "--na" in note
    assert discover(root, na=("?",)).roles["q"] == "numeric"


def test_a_comma_ending_every_line_is_named_as_such_not_as_a_saved_index(tmp_path):
    import polars as pl
    from conftest import write_competition

    from kit.competition import discover

    root = write_competition(tmp_path / "c")
    for name in ("train.csv", "test.csv"):
        lines = (root / name).read_text().splitlines()
        (root / name).write_text("".join(line + ",\n" for line in lines))
    comp = discover(root)
    assert any("without a name in 'train.csv' (empty: a comma ending every line?)" in n for n in comp.notes)
    assert comp.train.width == pl.read_csv(root / "train.csv").width - 1


def test_grouping_by_the_id_drops_no_feature_in_a_note(tmp_path):
    """Every test id is new, as ids are: the group note about a feature dropped for new groups
    would name a column that never was a feature."""
    from conftest import write_competition

    from kit.competition import discover

    comp = discover(write_competition(tmp_path / "c"), group="row_id")
    assert not any("as a feature" in n for n in comp.notes), comp.notes


def test_numbers_written_with_a_percent_sign_are_read_as_numbers_with_a_note(tmp_path):
    """45% is 45: a quantity for every track, not a category per value (and a few stray tokens are
    left for the placeholder check, as for thousands separators)."""
    path = tmp_path / "train.csv"
    path.write_text("id,pct,rate,y\n1,45%,1.5,0\n2, 3.5% ,2,1\n3,,3,1\n4,100%,4,0\n")
    notes = []
    frame = read_table(path, notes=notes)
    assert frame["pct"].to_list() == [45.0, 3.5, None, 100.0] and frame["rate"].dtype.is_float()
    assert any("percent sign (pct): read as numbers" in n for n in notes)


def test_tables_beside_the_competitions_files_that_kit_does_not_read_are_named(tmp_path):
    import shutil

    from conftest import write_competition

    from kit.competition import discover

    data = write_competition(tmp_path / "comp")
    assert not [n for n in discover(data).notes if "are not read" in n]
    shutil.copy(data / "train.csv", data / "original.csv")  # a playground's original dataset
    shutil.copy(data / "train.csv", data / "train_extra.csv")
    note = next(n for n in discover(data).notes if "are not read" in n)
    assert "trains on 'train.csv' and predicts 'test.csv'" in note
    assert "'original.csv'" in note and "'train_extra.csv'" in note and "sample" not in note


def test_a_category_test_has_and_train_never_had_is_named(tmp_path):
    import polars as pl
    from conftest import write_competition

    from kit.competition import discover

    data = write_competition(tmp_path / "comp")
    assert not [n for n in discover(data).notes if "train never has" in n]
    test = pl.read_csv(data / "test.csv")
    new = pl.int_range(pl.len()) % 5 == 0  # a new color in a fifth of the test rows
    test.with_columns(
        pl.when(new).then(pl.lit("purple")).otherwise(pl.col("color")).alias("color")
    ).write_csv(data / "test.csv")
    note = next(n for n in discover(data).notes if "train never has" in n)
    assert note.startswith("16 test row(s) have a value of 'color'") and "'purple'" in note
