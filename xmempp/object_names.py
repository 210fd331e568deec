"""Object names files (`objects.csv`: a header `id,name`, then one object a line): one strict reader for the CLI's
`--names` and the app's resume zips, so that a file one of them takes the other takes too.

A file that cannot be read as meant is refused, naming the line, rather than read in part: a missing header, an
id that is not a whole number of ASCII digits in 1..255 (`1.5`, `+1`, `1e0`, a fullwidth `１`, a number of
thousands of digits) or an id named twice (which of the two names was meant cannot be guessed).
"""

from __future__ import annotations

import csv
import io
import re

from xmempp.csv_cells import read_cell
from xmempp.errors import XMemPPError
from xmempp.masks.ids import MAX_OBJECT_ID

ID_COLUMN, NAME_COLUMN = "id", "name"
BYTE_ORDER_MARK = "\ufeff"  # a spreadsheet's "CSV UTF-8" starts with one, which would hide the id column
ASCII_DIGITS = re.compile(r"[0-9]+")  # str.isdigit() and int() also take '²', '１' and '+1'
MAX_SHOWN_CHARACTERS = 20  # of a refused id in a message: a 5000-digit id is shown by its start


def parse_object_names(text: str, source: str) -> dict[int, str]:
    """`text` of an objects.csv -> {object id: name}; `source` names the file in messages ("names.csv",
    "objects.csv in a.zip").

    Columns other than id and name (mattes/objects.csv adds `folder`) are ignored; a row without a name cell names
    its object "". One leading apostrophe of a name is removed (see xmempp.csv_cells). Raises XMemPPError naming
    `source` and the line for anything else than a header with id and name, then rows of a whole-number id in
    1..MAX_OBJECT_ID, each id once.
    """
    # strict: a quote left open to the end of the file took every line after it as one name, without a word
    reader = csv.reader(io.StringIO(text.removeprefix(BYTE_ORDER_MARK), newline=""), strict=True)
    names: dict[int, str] = {}
    try:
        header = next(reader, None)
        if header is None:  # an empty file names no object
            return names
        if ID_COLUMN not in header or NAME_COLUMN not in header:
            # without it, `1,chair` alone was taken for a header and named nothing
            raise XMemPPError(f"{source} line 1: expected the header {ID_COLUMN},{NAME_COLUMN} (then one object a "
                              f"line), got {','.join(header)[:80]}")
        id_column, name_column = header.index(ID_COLUMN), header.index(NAME_COLUMN)
        for row in reader:
            if not row:  # a blank line
                continue
            line = reader.line_num
            object_id = _object_id(row[id_column] if id_column < len(row) else None, source, line)
            if object_id in names:
                raise XMemPPError(f"{source} line {line}: object id {object_id} is named a second time; give each "
                                  "object one line")
            names[object_id] = read_cell(row[name_column] if name_column < len(row) else "")
    except csv.Error as error:
        raise XMemPPError(f"cannot read object names from {source}: not a readable CSV ({error})") from None
    return names


def _object_id(cell: str | None, source: str, line: int) -> int:
    """The object id a cell holds: ASCII digits (spaces around them allowed) of a number in 1..MAX_OBJECT_ID."""
    text = (cell or "").strip()
    if not ASCII_DIGITS.fullmatch(text):
        shown = repr(text[:MAX_SHOWN_CHARACTERS]) + ("..." if len(text) > MAX_SHOWN_CHARACTERS else "")
        raise XMemPPError(f"{source} line {line}: expected columns {ID_COLUMN},{NAME_COLUMN} with a whole-number id "
                          f"(ASCII digits), got {shown}")
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(MAX_OBJECT_ID)) or not 1 <= int(digits) <= MAX_OBJECT_ID:
        # int() of thousands of digits would stop at Python's own limit, with a message that names no file
        if len(digits) > MAX_SHOWN_CHARACTERS:
            digits = f"{digits[:MAX_SHOWN_CHARACTERS]}... ({len(digits):,} digits)"
        raise XMemPPError(f"{source} line {line}: object id {digits} is not in 1..{MAX_OBJECT_ID}")
    return int(digits)
