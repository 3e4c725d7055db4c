"""The API client against a real HTTP server: problem+json, refresh-once, environment overrides."""

from __future__ import annotations

import httpx
import pytest

from caboose_cli import client as client_module
from caboose_cli.client import Auth, Client, problem_from_response, resolve_auth
from caboose_cli.config import Credentials, load_credentials, save_credentials
from caboose_cli.errors import ApiError, CliError, ExitCode, NotLoggedInError
from tests.standin import EMAIL, StandIn


def session_for(standin: StandIn) -> Credentials:
    user_id = standin.world.users[EMAIL]["id"]
    tokens = standin.world.issue_session(user_id)
    credentials = Credentials(
        host=standin.url,
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        email=EMAIL,
    )
    save_credentials(credentials)
    return credentials


# Problem details -----------------------------------------------------------------------------


def _response(status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", "http://h/x"), **kwargs)  # type: ignore[arg-type]


def test_problem_json_is_title_and_detail() -> None:
    error = problem_from_response(
        _response(
            409,
            json={"title": "Conflict", "detail": "A project named 'shop' exists", "status": 409},
            headers={"content-type": "application/problem+json"},
        )
    )
    assert error.message == "Conflict: A project named 'shop' exists"
    assert error.exit_code == ExitCode.CONFLICT


def test_validation_errors_list_each_field() -> None:
    error = problem_from_response(
        _response(
            422,
            json={
                "title": "Request validation failed",
                "detail": "Invalid variables",
                "errors": [{"field": "variables.1X", "message": "1X: not a name", "code": "k"}],
            },
        )
    )
    assert error.message.splitlines() == [
        "Request validation failed: Invalid variables",
        "  variables.1X: 1X: not a name",
    ]
    assert error.exit_code == ExitCode.USAGE


def test_a_field_error_the_detail_already_states_is_not_repeated() -> None:
    # What the platform answers `caboose environment new "Bad Name"`.
    message = "Value error, must be a DNS label"
    error = problem_from_response(
        _response(
            422,
            json={
                "title": "Request validation failed",
                "detail": f"Invalid request: name: {message}",
                "errors": [{"field": "name", "message": message, "code": "value_error"}],
            },
        )
    )
    assert error.message == f"Request validation failed: Invalid request: name: {message}"


def test_fastapi_plain_errors_and_proxy_pages_are_readable() -> None:
    plain = problem_from_response(_response(404, json={"detail": "Not Found"}))
    assert plain.message == "HTTP 404 Not Found: Not Found"
    assert plain.exit_code == ExitCode.NOT_FOUND
    html = problem_from_response(_response(502, text="<html><body>Bad gateway</body></html>"))
    assert html.message == "HTTP 502 Bad Gateway"
    text = problem_from_response(_response(503, text="database down\nmore"))
    assert text.message == "HTTP 503 Service Unavailable: database down"


def test_status_codes_map_to_exit_codes() -> None:
    codes = {401: 3, 403: 5, 404: 4, 409: 6, 400: 2, 422: 2, 413: 2, 500: 1, 429: 1}
    for status, code in codes.items():
        assert ApiError(status=status, title="t").exit_code == code


def test_an_api_error_over_http(standin: StandIn) -> None:
    session_for(standin)
    with Client(resolve_auth()) as client, pytest.raises(ApiError) as caught:
        client.get("/projects/00000000-0000-0000-0000-000000000000")
    assert caught.value.status == 404
    assert caught.value.message.startswith("Not found: Project 00000000")
    assert caught.value.request_id == "req-123"


# Refresh -------------------------------------------------------------------------------------


def test_an_expired_session_is_refreshed_once_and_the_request_retried(standin: StandIn) -> None:
    old = session_for(standin)
    standin.world.expire_access_tokens()
    with Client(resolve_auth()) as client:
        assert client.get("/me")["email"] == EMAIL
    assert standin.world.refresh_calls == 1
    stored = load_credentials()
    assert stored is not None
    assert stored.access_token != old.access_token
    assert stored.refresh_token != old.refresh_token  # rotated, and kept for next time


def test_a_failed_refresh_means_log_in_again(standin: StandIn) -> None:
    session_for(standin)
    standin.world.expire_access_tokens()
    standin.world.refresh_tokens.clear()
    with Client(resolve_auth()) as client, pytest.raises(NotLoggedInError) as caught:
        client.get("/me")
    assert caught.value.exit_code == ExitCode.NOT_AUTHENTICATED
    assert "expired" in caught.value.message
    assert standin.world.refresh_calls == 1


def test_a_401_after_refreshing_is_not_retried_again(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_for(standin)
    standin.world.expire_access_tokens()
    original = standin.world.issue_session

    def issue_unusable(user_id: str) -> dict[str, object]:
        tokens = original(user_id)
        standin.world.access_tokens.clear()  # the new access token is refused too
        return tokens

    monkeypatch.setattr(standin.world, "issue_session", issue_unusable)
    with Client(resolve_auth()) as client, pytest.raises(ApiError) as caught:
        client.get("/me")
    assert caught.value.status == 401
    assert standin.world.refresh_calls == 1


def test_a_refresh_done_by_another_process_is_adopted(standin: StandIn) -> None:
    stale = session_for(standin)
    standin.world.expire_access_tokens()
    auth = resolve_auth()
    session_for(standin)  # "another caboose process" refreshed and stored new tokens
    assert auth.token == stale.access_token
    with Client(auth) as client:
        assert client.get("/me")["email"] == EMAIL
    assert standin.world.refresh_calls == 0  # no second rotation, which would end the session


def test_an_api_token_is_never_refreshed(standin: StandIn) -> None:
    save_credentials(Credentials(host=standin.url, api_token="cb_revoked"))
    with Client(resolve_auth()) as client, pytest.raises(ApiError) as caught:
        client.get("/me")
    assert caught.value.exit_code == ExitCode.NOT_AUTHENTICATED
    assert standin.world.refresh_calls == 0


# Environment overrides ----------------------------------------------------------------------


def test_caboose_token_and_host_override_the_stored_login(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_credentials(Credentials(host="http://elsewhere:1", access_token="at-x"))
    user_id = standin.world.users[EMAIL]["id"]
    standin.world.api_tokens["cb_ci"] = {"user_id": user_id, "revoked_at": None}
    monkeypatch.setenv("CABOOSE_HOST", standin.url)
    monkeypatch.setenv("CABOOSE_TOKEN", "cb_ci")
    auth = resolve_auth()
    assert (auth.host, auth.token, auth.source) == (standin.url, "cb_ci", "env")
    with Client(auth) as client:
        assert client.get("/me")["email"] == EMAIL


def test_a_stored_token_is_never_sent_to_another_host(monkeypatch: pytest.MonkeyPatch) -> None:
    save_credentials(Credentials(host="http://mine:8080", access_token="secret"))
    monkeypatch.setenv("CABOOSE_HOST", "http://theirs:8080")
    auth = resolve_auth()
    assert auth.host == "http://theirs:8080"
    assert auth.token is None
    with pytest.raises(NotLoggedInError):
        Client(auth).require_login()


def test_defaults_to_localhost() -> None:
    assert resolve_auth().host == "http://localhost:8080"


def test_an_unreachable_host_is_one_clear_line() -> None:
    with (
        Client(Auth("http://127.0.0.1:9", "t", "given")) as client,
        pytest.raises(CliError) as caught,
    ):
        client.get("/me")
    assert caught.value.message.startswith("Cannot reach http://127.0.0.1:9")
    assert caught.value.exit_code == ExitCode.FAILURE


def test_pages_are_followed(standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "PAGE_SIZE", 2)
    session_for(standin)
    workspace_id = next(iter(standin.world.workspaces))
    for n in range(5):
        standin.world.add_project(workspace_id, f"p{n}")
    with Client(resolve_auth()) as client:
        projects = client.paginate(f"/workspaces/{workspace_id}/projects")
    assert [p["name"] for p in projects] == ["p0", "p1", "p2", "p3", "p4"]
    pages = [q for m, path, q in standin.world.requests if path.endswith("/projects")]
    assert [q["skip"] for q in pages] == ["0", "2", "4"]


def test_websocket_urls() -> None:
    client = Client(Auth("https://c.example.com", None, "none"))
    assert (
        client.websocket_url("/deployments/d/logs/ws", {"since": "1-0", "x": None})
        == "wss://c.example.com/api/v1/deployments/d/logs/ws?since=1-0"
    )
