"""Secret redaction: what must be masked, what must be left alone."""

from __future__ import annotations

import random
import string

from caboose.logs.redaction import MASK, Redactor


def test_masks_every_occurrence_of_a_value() -> None:
    redact = Redactor(["s3cr3t-value"])
    assert redact("token=s3cr3t-value and again s3cr3t-value.") == (
        f"token={MASK} and again {MASK}."
    )


def test_short_values_are_left_alone() -> None:
    redact = Redactor(["true", "3000", "abcde", "prod"])
    line = "listening on 3000 (prod=true) abcde"
    assert redact(line) == line
    assert redact.is_empty


def test_a_value_of_exactly_six_characters_is_masked() -> None:
    assert Redactor(["abcdef"])("xabcdefx") == f"x{MASK}x"


def test_the_longest_value_wins_at_a_position() -> None:
    redact = Redactor(["password", "password123"])
    assert redact("pw: password123!") == f"pw: {MASK}!"
    assert redact("pw: password!") == f"pw: {MASK}!"


def test_overlapping_values_leave_no_part_of_either_readable() -> None:
    # Replacing the first match would leave "3456" of the second value readable.
    redact = Redactor(["abcdef12", "ef123456"])
    assert redact("xxabcdef123456yy") == f"xx{MASK}yy"
    # One value inside another.
    redact = Redactor(["inner-secret", "the-inner-secret-outer"])
    assert redact("a the-inner-secret-outer b inner-secret c") == f"a {MASK} b {MASK} c"


def test_ansi_colour_codes_are_kept() -> None:
    redact = Redactor(["hunter2hunter2"])
    line = "\x1b[31merror:\x1b[0m password \x1b[1mhunter2hunter2\x1b[0m rejected"
    assert redact(line) == f"\x1b[31merror:\x1b[0m password \x1b[1m{MASK}\x1b[0m rejected"


def test_regex_metacharacters_in_values_are_literal() -> None:
    redact = Redactor(["a.b*c+d?(e)", "[x]{2}|y"])
    assert redact("v=a.b*c+d?(e) w=[x]{2}|y z=aXbbbcd") == f"v={MASK} w={MASK} z=aXbbbcd"


def test_multi_line_values_are_masked_line_by_line() -> None:
    key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----"
    redact = Redactor([key])
    assert redact("MIIBOgIBAAJBAKj34GkxFhD9") == MASK
    assert redact("-----BEGIN KEY-----") == MASK


def test_url_encoded_values_are_masked() -> None:
    redact = Redactor(["p@ss/w0rd"])
    assert redact("postgres://app:p%40ss%2Fw0rd@db/app") == f"postgres://app:{MASK}@db/app"


def test_empty_and_whitespace_values_are_ignored() -> None:
    redact = Redactor(["", "      ", "real-secret"])
    assert redact("a      b real-secret") == f"a      b {MASK}"


def test_many_values_against_a_brute_force_reference() -> None:
    rng = random.Random(7)
    alphabet = "abcd"  # a small alphabet makes overlaps and shared prefixes common
    values = ["".join(rng.choice(alphabet) for _ in range(rng.randint(6, 10))) for _ in range(300)]
    redact = Redactor(values)
    for _ in range(200):
        line = "".join(rng.choice(alphabet + string.digits) for _ in range(rng.randint(0, 80)))
        masked = [False] * len(line)
        for value in values:
            start = line.find(value)
            while start != -1:
                for position in range(start, start + len(value)):
                    masked[position] = True
                start = line.find(value, start + 1)
        expected, position = [], 0
        while position < len(line):
            if masked[position]:
                while position < len(line) and masked[position]:
                    position += 1
                expected.append(MASK)
            else:
                expected.append(line[position])
                position += 1
        assert redact(line) == "".join(expected), line


def test_a_very_long_value_compiles() -> None:
    long_value = "k" * 5000 + "end"
    assert Redactor([long_value, "k" * 4000 + "x"])(f"[{long_value}]") == f"[{MASK}]"
