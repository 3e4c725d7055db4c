"""`caboose variables import` reads .env files like the usual tools."""

from __future__ import annotations

import pytest

from caboose_cli.dotenv import parse_dotenv
from caboose_cli.errors import UsageError


def test_the_usual_forms() -> None:
    text = (
        "# a comment\n"
        "\n"
        "PLAIN=value\n"
        "export EXPORTED=yes\n"
        "SPACED = padded  \n"
        "INLINE=value # a comment\n"
        "HASH=a#b\n"
        "SINGLE='$not ${expanded} \\n'\n"
        'DOUBLE="line1\\nline2\\t\\"q\\""\n'
        'MULTI="first\n'
        'second"\n'
        "EMPTY=\n"
        "EQUALS=a=b=c\n"
        "AFTER=1\n"
    )
    assert parse_dotenv(text) == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "padded",
        "INLINE": "value",
        "HASH": "a#b",
        "SINGLE": "$not ${expanded} \\n",
        "DOUBLE": 'line1\nline2\t"q"',
        "MULTI": "first\nsecond",
        "EMPTY": "",
        "EQUALS": "a=b=c",
        "AFTER": "1",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("NOEQUALS\n", ".env:1: expected KEY=VALUE"),
        ("A=1\n1BAD=2\n", ".env:2: expected KEY=VALUE"),
        ('A="never closed\n', ".env:1: the value's \" quote is never closed"),
    ],
)
def test_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_dotenv(text)
