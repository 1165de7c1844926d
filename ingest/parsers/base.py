"""What every parser takes and yields.

A parser gets one :class:`Source` (the bytes of a file or an archive member) and yields
:class:`~core.schemas.Document` objects, or :class:`RecordFailure` for a single bad record inside a
multi-record file (a CT.gov page, a MEDLINE set) so that one bad record never loses the others.
A file that cannot be read at all raises :class:`~core.errors.ParseError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from core.schemas import Document


@dataclass(frozen=True, slots=True)
class Source:
    """One input: its display name (``dir/file.tar.gz!member.nxml``) and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A record inside ``source`` that could not be parsed; ``record`` says which (id or index)."""

    source: str
    record: str
    reason: str


ParseResult = Document | RecordFailure

#: English month names and abbreviations (as met in dates of all formats) -> month number.
MONTHS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
Parser = Callable[[Source], Iterator[ParseResult]]
