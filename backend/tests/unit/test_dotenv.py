"""The ``.env`` parser: the common dialect of python-dotenv, Compose and Node's dotenv, with
every error named by line and never a value in a message."""

from __future__ import annotations

import pytest

from caboose.variables.dotenv import DotenvError, parse_dotenv


def parse(text: str) -> dict[str, str]:
    return {entry.key: entry.value for entry in parse_dotenv(text)}


def problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(DotenvError) as caught:
        parse_dotenv(text)
    return [(p.line, p.message) for p in caught.value.problems]


def test_plain_assignments_comments_and_blank_lines() -> None:
    text = "# a comment\n\nA=1\n   # indented comment\nB = two words  \nexport C=3\n"
    assert parse(text) == {"A": "1", "B": "two words", "C": "3"}


def test_equals_signs_and_hashes_inside_values() -> None:
    text = (
        "URL=postgres://u:p@h/db?sslmode=require&x=1\nCOLOR=#fff\nTAG=a#b\n"
        "C=v # comment\nD= # only a comment\n"
    )
    assert parse(text) == {
        "URL": "postgres://u:p@h/db?sslmode=require&x=1",
        "COLOR": "#fff",  # a comment starts after whitespace only, as in python-dotenv
        "TAG": "a#b",
        "C": "v",
        "D": "",
    }


def test_empty_values() -> None:
    assert parse("A=\nB=''\nC=\"\"\nD=   \n") == {"A": "", "B": "", "C": "", "D": ""}


def test_single_quotes_are_literal_but_for_escaped_quotes() -> None:
    text = "A='no $HOME \\n or ${X} here'\nB='it\\'s'\nC='  spaced  '  # comment\n"
    assert parse(text) == {"A": "no $HOME \\n or ${X} here", "B": "it's", "C": "  spaced  "}


def test_double_quotes_understand_escapes() -> None:
    text = 'A="line\\nbreak\\ttab \\"quoted\\" back\\\\slash \\$ \\q"\n'
    assert parse(text) == {"A": 'line\nbreak\ttab "quoted" back\\slash $ \\q'}


def test_double_quoted_values_may_span_lines() -> None:
    text = 'KEY="-----BEGIN KEY-----\nabc=\n# not a comment\n-----END KEY-----"\nNEXT=1\n'
    entries = parse_dotenv(text)
    assert [(e.key, e.line) for e in entries] == [("KEY", 1), ("NEXT", 5)]
    assert entries[0].value == "-----BEGIN KEY-----\nabc=\n# not a comment\n-----END KEY-----"


def test_export_is_optional_and_may_itself_be_a_name() -> None:
    assert parse("export   A=1\nexport=2\n") == {"A": "1", "export": "2"}


def test_nothing_is_interpolated() -> None:
    assert parse('A=${B}\nB="$A ${{shared.X}}"\n') == {"A": "${B}", "B": "$A ${{shared.X}}"}


def test_crlf_line_endings_and_a_byte_order_mark() -> None:
    assert parse('\ufeffA=1\r\nB="x\r\ny"\r\n') == {"A": "1", "B": "x\ny"}


def test_a_repeated_key_keeps_both_entries_and_the_last_wins() -> None:
    entries = parse_dotenv("A=1\nA=2\n")
    assert [(e.key, e.value, e.line) for e in entries] == [("A", "1", 1), ("A", "2", 2)]
    assert parse("A=1\nA=2\n") == {"A": "2"}


def test_errors_name_their_lines() -> None:
    text = 'OK=1\nnot an assignment\n9LIVES=x\nBAD NAME=x\nA="closed" trailing\nB=2\n'
    rule = "is not a valid name (letters, digits and underscores, not starting with a digit)"
    assert problems(text) == [
        (2, "expected KEY=value"),
        (3, f"'9LIVES' {rule}"),
        (4, f"'BAD NAME' {rule}"),
        (
            5,
            "unexpected text after the closing quote of A (quote the whole value, or start a "
            "comment with ' #')",
        ),
    ]


def test_an_unclosed_quote_names_the_line_it_opens_on() -> None:
    text = 'A=1\nB="starts here\nand never\nends\n'
    assert problems(text) == [(2, 'the value of B opens a " quote that is never closed')]
    assert problems("C='x") == [(1, "the value of C opens a ' quote that is never closed")]


def test_line_numbers_count_the_lines_a_quoted_value_spans() -> None:
    text = 'A="one\ntwo\nthree"\nbroken\n'
    assert problems(text) == [(4, "expected KEY=value")]


def test_messages_never_contain_values() -> None:
    secret = "hunter2-very-secret"
    text = f'A="{secret}" {secret}\nB="{secret}\n'
    with pytest.raises(DotenvError) as caught:
        parse_dotenv(text)
    assert secret not in str(caught.value)
    assert all(secret not in p.message for p in caught.value.problems)


def test_an_error_summary_counts_what_it_leaves_out() -> None:
    with pytest.raises(DotenvError, match=r"line 1: .* \(and 2 more\)"):
        parse_dotenv("a\nb\nc\nd\ne\nF=1\n")
