"""Reference variables: shared, cross-service, platform domains, nesting, escapes, and errors
that name the variable and the reference (cycles as ``A -> B -> A``), never a value."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from caboose.variables.names import MAX_RESOLVED_VALUE_BYTES
from caboose.variables.resolve import (
    ProjectVariables,
    VariableReferenceError,
    find_references,
    reference_syntax_problem,
    referenced_values,
    resolve_service_environment,
)

API_PLATFORM = {"CABOOSE_PUBLIC_DOMAIN": "api-shop.localhost", "CABOOSE_SERVICE_NAME": "api"}
WEB_PLATFORM = {"CABOOSE_PUBLIC_DOMAIN": "web-shop.localhost", "CABOOSE_SERVICE_NAME": "web"}


def project(
    web: Mapping[str, str],
    *,
    api: Mapping[str, str] | None = None,
    shared: Mapping[str, str] | None = None,
) -> ProjectVariables:
    return ProjectVariables(
        services={"web": web, "api": api or {}},
        shared=shared or {},
        platform={"web": WEB_PLATFORM, "api": API_PLATFORM},
    )


def resolve(web: Mapping[str, str], **others: Mapping[str, str]) -> dict[str, str]:
    environment = resolve_service_environment(project(web, **others), "web")
    return {k: v for k, v in environment.items() if k in web}


def failure(web: Mapping[str, str], **others: Mapping[str, str]) -> VariableReferenceError:
    with pytest.raises(VariableReferenceError) as caught:
        resolve_service_environment(project(web, **others), "web")
    return caught.value


def test_values_without_references_pass_through() -> None:
    values = {"A": "plain", "B": "$HOME ${PATH} $$ {{x}} $5 ${", "C": ""}
    assert resolve(values) == values


def test_shared_references() -> None:
    shared = {"DOMAIN": "example.com", "PATH": "/v1/gql"}
    web = {"ENDPOINT": "https://${{shared.DOMAIN}}${{ shared.PATH }}"}
    assert resolve(web, shared=shared) == {"ENDPOINT": "https://example.com/v1/gql"}


def test_references_to_another_service_and_to_the_same_one() -> None:
    api = {"DATABASE_URL": "postgres://db/shop"}
    web = {"DB": "${{api.DATABASE_URL}}", "COPY": "${{DB}}?pool=5"}
    assert resolve(web, api=api) == {
        "DB": "postgres://db/shop",
        "COPY": "postgres://db/shop?pool=5",
    }


def test_platform_domains_under_both_names() -> None:
    web = {
        "API": "https://${{api.CABOOSE_PUBLIC_DOMAIN}}",
        "API2": "https://${{api.RAILWAY_PUBLIC_DOMAIN}}",
        "SELF": "${{CABOOSE_PUBLIC_DOMAIN}}/${{RAILWAY_SERVICE_NAME}}",
    }
    assert resolve(web) == {
        "API": "https://api-shop.localhost",
        "API2": "https://api-shop.localhost",
        "SELF": "web-shop.localhost/web",
    }


def test_the_environment_holds_own_platform_values_and_variables_only() -> None:
    environment = resolve_service_environment(
        project({"A": "1"}, api={"SECRET": "x"}, shared={"S": "y"}), "web"
    )
    assert environment == {
        "CABOOSE_PUBLIC_DOMAIN": "web-shop.localhost",
        "RAILWAY_PUBLIC_DOMAIN": "web-shop.localhost",
        "CABOOSE_SERVICE_NAME": "web",
        "RAILWAY_SERVICE_NAME": "web",
        "A": "1",
    }


def test_nested_references_expand_in_the_context_that_holds_them() -> None:
    # api's URL names *its own* domain, whoever references it.
    api = {"URL": "https://${{CABOOSE_PUBLIC_DOMAIN}}/${{PREFIX}}", "PREFIX": "${{shared.V}}"}
    shared = {"V": "v${{shared.N}}", "N": "2"}
    assert resolve({"API_URL": "${{api.URL}}"}, api=api, shared=shared) == {
        "API_URL": "https://api-shop.localhost/v2"
    }


def test_a_shared_variable_may_reference_a_service() -> None:
    shared = {"API": "${{api.CABOOSE_PUBLIC_DOMAIN}}"}
    assert resolve({"A": "${{shared.API}}"}, shared=shared) == {"A": "api-shop.localhost"}


def test_a_dollar_escapes_a_literal_opening() -> None:
    web = {"A": "$${{shared.NOT}} and $${{ anything at all", "B": "x$${{y}}z ${{shared.S}}"}
    assert resolve(web, shared={"S": "s"}) == {
        "A": "${{shared.NOT}} and ${{ anything at all",
        "B": "x${{y}}z s",
    }


def test_a_referenced_value_is_not_expanded_twice() -> None:
    # The expansion of S is "${{X}}" literally: escapes are resolved once, where they are written.
    assert resolve({"A": "${{shared.S}}"}, shared={"S": "$${{X}}"}) == {"A": "${{X}}"}


def test_platform_values_are_data_not_templates() -> None:
    projects = ProjectVariables(
        services={"web": {"A": "${{CABOOSE_GIT_COMMIT_SHA}}"}},
        platform={"web": {"CABOOSE_GIT_COMMIT_SHA": "${{shared.X}}"}},
    )
    assert resolve_service_environment(projects, "web")["A"] == "${{shared.X}}"


# Errors -------------------------------------------------------------------------------------


def test_an_unknown_shared_variable() -> None:
    error = failure({"DSN": "${{shared.SENTRY_DSN}}"})
    assert error.kind == "unknown"
    assert error.variable == "DSN"
    assert error.reference == "${{shared.SENTRY_DSN}}"
    assert str(error) == (
        "variable DSN: ${{shared.SENTRY_DSN}} is not defined (no shared variable SENTRY_DSN)"
    )


def test_an_unknown_service_and_an_unknown_key_of_a_known_one() -> None:
    assert str(failure({"A": "${{worker.X}}"})) == (
        "variable A: ${{worker.X}} names no service of this project ('worker')"
    )
    assert str(failure({"A": "${{api.NOPE}}"})) == (
        "variable A: ${{api.NOPE}} is not defined (service 'api' has no variable NOPE)"
    )
    assert str(failure({"A": "${{MISSING}}"})) == (
        "variable A: ${{MISSING}} is not defined (this service has no variable MISSING)"
    )


def test_a_platform_value_the_service_lacks_is_explained() -> None:
    projects = ProjectVariables(
        services={"web": {"A": "${{worker.CABOOSE_PUBLIC_DOMAIN}}"}, "worker": {}},
        platform={"web": WEB_PLATFORM, "worker": {"CABOOSE_SERVICE_NAME": "worker"}},
    )
    with pytest.raises(VariableReferenceError, match="no public domain yet"):
        resolve_service_environment(projects, "web")


def test_an_unknown_reference_deep_in_a_chain_names_the_chain() -> None:
    error = failure({"A": "${{api.B}}"}, api={"B": "${{C}}"})
    assert error.variable == "A"
    assert error.reference == "${{C}}"
    assert error.chain == ("A", "api.B", "api.C")


def test_a_self_reference_is_a_cycle() -> None:
    error = failure({"A": "x${{A}}"})
    assert error.kind == "cycle"
    assert str(error) == "variable A: reference cycle A -> A"


def test_a_cycle_through_shared_and_another_service() -> None:
    error = failure(
        {"A": "${{B}}", "B": "${{shared.C}}"},
        shared={"C": "${{api.D}}"},
        api={"D": "${{web.A}}"},
    )
    assert error.kind == "cycle"
    assert error.variable == "A"
    assert error.chain == ("A", "B", "shared.C", "api.D", "A")
    assert str(error) == "variable A: reference cycle A -> B -> shared.C -> api.D -> A"


def test_a_cycle_elsewhere_in_the_project_does_not_fail_this_service() -> None:
    api = {"X": "${{Y}}", "Y": "${{X}}", "OK": "fine"}
    assert resolve({"A": "${{api.OK}}"}, api=api) == {"A": "fine"}


def test_a_malformed_reference_is_an_error_not_text() -> None:
    error = failure({"A": "ok", "B": "${{ shared.KEY with spaces }}"})
    assert error.kind == "malformed"
    assert error.variable == "B"
    assert "$${{" in str(error)


def test_messages_never_contain_values() -> None:
    secret = "hunter2-very-secret"
    for web, others in (
        ({"A": f"{secret}${{{{shared.MISSING}}}}"}, {}),
        ({"A": f"{secret}${{{{A}}}}"}, {}),
        ({"A": f"{secret} ${{{{ bad"}, {}),
        ({"A": "${{shared.S}}"}, {"shared": {"S": f"{secret}${{{{api.NOPE}}}}"}}),
    ):
        error = failure(web, **others)
        assert secret not in str(error)


def test_exponential_expansion_is_stopped() -> None:
    # Each level doubles: 2**30 characters if nothing stopped it.
    shared = {f"L{i}": f"${{{{shared.L{i + 1}}}}}${{{{shared.L{i + 1}}}}}" for i in range(30)}
    shared["L30"] = "x"
    error = failure({"A": "${{shared.L0}}"}, shared=shared)
    assert error.kind == "too_large"
    assert error.variable == "A"
    big = "y" * (MAX_RESOLVED_VALUE_BYTES // 2 + 1)
    assert failure({"A": "${{shared.B}}${{shared.B}}"}, shared={"B": big}).kind == "too_large"


def test_very_deep_nesting_is_refused() -> None:
    shared = {f"L{i}": f"${{{{shared.L{i + 1}}}}}" for i in range(100)}
    shared["L100"] = "end"
    error = failure({"A": "${{shared.L0}}"}, shared=shared)
    assert error.kind == "too_deep"
    shallow = {f"L{i}": f"${{{{shared.L{i + 1}}}}}" for i in range(10)}
    shallow["L10"] = "end"
    assert resolve({"A": "${{shared.L0}}"}, shared=shallow) == {"A": "end"}


def test_the_shared_namespace_is_not_a_service() -> None:
    with pytest.raises(ValueError, match="shared namespace"):
        resolve_service_environment(project({}), "shared")


# Parsing helpers ------------------------------------------------------------------------------


def test_find_references_and_syntax_problems() -> None:
    refs = find_references("a ${{shared.X}} b ${{ api.Y }} $${{no}} ${{Z}}")
    assert [(r.namespace, r.key, r.text) for r in refs] == [
        ("shared", "X", "${{shared.X}}"),
        ("api", "Y", "${{api.Y}}"),
        (None, "Z", "${{Z}}"),
    ]
    assert reference_syntax_problem("${{shared.X}} $${{ $ $$ {{") is None
    assert reference_syntax_problem("${{a.b.c}}") is not None
    assert reference_syntax_problem("${{1X}}") is not None
    assert reference_syntax_problem("unclosed ${{X") is not None


def test_referenced_values_gather_what_reaches_the_app() -> None:
    api = {"PASSWORD": "pw-123456", "URL": "postgres://app:${{PASSWORD}}@db", "UNUSED": "u-123456"}
    shared = {"TOKEN": "tok-123456"}
    web = {"DB": "${{api.URL}}", "T": "${{shared.TOKEN}}", "BROKEN": "${{shared.NOPE}}"}
    values = referenced_values(project(web, api=api, shared=shared), "web")
    assert {"pw-123456", "postgres://app:pw-123456@db", "tok-123456"} <= set(values)
    assert "${{shared.NOPE}}" in values  # an unresolvable variable still gives its stored text
    assert "u-123456" not in values  # nothing the app never sees
    assert "web-shop.localhost" not in values  # platform values are not secrets
