"""`caboose run` expands ${{…}} references the way the platform does."""

from __future__ import annotations

from caboose_cli.references import resolve

PROJECT = {
    ("shared", "REGION"): "eu-west",
    ("shared", "URL"): "https://${{HOST}}",  # inside a shared variable: another shared one
    ("shared", "HOST"): "example.com",
    ("api", "TOKEN"): "t-${{SUFFIX}}",  # api's own SUFFIX, not the caller's
    ("api", "SUFFIX"): "api",
    ("api", "CABOOSE_PUBLIC_DOMAIN"): "api-shop.localhost",
    ("web", "SUFFIX"): "web",
}


def lookup(namespace: str, key: str) -> str | None:
    return PROJECT.get((namespace, key))


def test_references_of_every_kind() -> None:
    result = resolve(
        {
            "SUFFIX": "web",
            "OWN": "${{SUFFIX}}!",
            "SHARED": "${{ shared.REGION }}",
            "NESTED": "${{shared.URL}}/x",
            "OTHER": "${{api.TOKEN}}",
            "DOMAIN": "https://${{api.CABOOSE_PUBLIC_DOMAIN}}",
            "PLAIN": "$HOME and $$ stay",
            "LITERAL": "$${{shared.REGION}}",
        },
        service="web",
        lookup=lookup,
    )
    assert result.problems == []
    assert result.values == {
        "SUFFIX": "web",
        "OWN": "web!",
        "SHARED": "eu-west",
        "NESTED": "https://example.com/x",
        "OTHER": "t-api",
        "DOMAIN": "https://api-shop.localhost",
        "PLAIN": "$HOME and $$ stay",
        "LITERAL": "${{shared.REGION}}",
    }


def test_unknown_cycles_and_malformed_are_reported_and_left_as_written() -> None:
    result = resolve(
        {
            "A": "${{B}}",
            "B": "${{A}}",
            "UNKNOWN": "${{nope.KEY}}",
            "MALFORMED": "${{not closed",
            "FINE": "ok",
        },
        service="web",
        lookup=lookup,
    )
    assert result.values == {
        "A": "${{B}}",
        "B": "${{A}}",
        "UNKNOWN": "${{nope.KEY}}",
        "MALFORMED": "${{not closed",
        "FINE": "ok",
    }
    problems = "\n".join(result.problems)
    assert "A: a cycle: A → B → A" in problems
    assert "UNKNOWN: nope.KEY is unknown" in problems
    assert "MALFORMED: a malformed" in problems
