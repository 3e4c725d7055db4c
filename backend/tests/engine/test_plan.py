"""Planning: providers, config-as-code, Procfile, precedence, and hostile or broken files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caboose.engine.plan import Runtimes, parse_procfile, plan_and_report, plan_build, render_plan
from caboose.engine.plan.runtimes import node_range_allows, python_spec_allows
from caboose.engine.types import (
    BuildPlan,
    MemoryReporter,
    PlanError,
    RestartPolicyType,
    ServiceOverrides,
)

from .conftest import FIXTURE_APPS

RUNTIMES = Runtimes(python="3.11.2", node="20.20.2")


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def plan(root: Path, files: dict[str, str] | None = None, **kw: object) -> BuildPlan:
    return plan_build(tree(root, files or {}), runtimes=RUNTIMES, **kw)  # type: ignore[arg-type]


FLASK_APP = "from flask import Flask\napp = Flask(__name__)\n"
FASTAPI_APP = "from fastapi import FastAPI\n\napp = FastAPI()\n"


# ---- the sample apps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "provider", "start"),
    [
        ("flask-gunicorn", "python", "gunicorn --bind 0.0.0.0:$PORT app:app"),
        ("fastapi-uvicorn", "python", "uvicorn main:app --host 0.0.0.0 --port $PORT"),
        ("express", "node", "npm start"),
        ("procfile-app", "python", "python server.py"),
        ("railway-json", "python", "python app.py"),
        ("crashing", "python", "python main.py"),
        ("failing-build", "python", "python main.py"),
        ("never-healthy", "python", "python server.py"),
        ("logger", "python", "python main.py"),
        ("static-site", "static", None),
    ],
)
def test_sample_apps(app: str, provider: str, start: str | None) -> None:
    result = plan_build(FIXTURE_APPS / app, runtimes=RUNTIMES)
    assert (result.provider, result.start_command) == (provider, start)


def test_sample_app_details() -> None:
    flask = plan_build(FIXTURE_APPS / "flask-gunicorn", runtimes=RUNTIMES)
    assert (flask.package_manager, flask.dependency_files) == ("pip", ("requirements.txt",))
    fastapi = plan_build(FIXTURE_APPS / "fastapi-uvicorn", runtimes=RUNTIMES)
    assert fastapi.package_manager == "uv"
    assert fastapi.install_command == "uv sync --frozen --no-dev --no-install-project"
    procfile = plan_build(FIXTURE_APPS / "procfile-app", runtimes=RUNTIMES)
    assert procfile.pre_deploy_commands == ("python release.py",)
    assert procfile.origin("start_command") == "Procfile"
    assert any("Python 3.9.18" in note for note in procfile.notes)
    railway = plan_build(FIXTURE_APPS / "railway-json", runtimes=RUNTIMES)
    assert railway.healthcheck_path == "/health"
    assert railway.healthcheck_timeout == 30
    assert railway.pre_deploy_commands == ("python migrate.py",)
    assert (railway.restart_policy_type, railway.restart_policy_max_retries) == ("ON_FAILURE", 3)
    assert railway.watch_patterns == ("**/*.py",)
    failing = plan_build(FIXTURE_APPS / "failing-build", runtimes=RUNTIMES)
    assert (failing.build_command, failing.config_file) == ("python build.py", "railway.toml")
    static = plan_build(FIXTURE_APPS / "static-site", runtimes=RUNTIMES)
    assert (static.static_dir, static.spa) == (".", True)


# ---- Python ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "start"),
    [
        (
            {"requirements.txt": "fastapi\nuvicorn[standard]\n", "main.py": FASTAPI_APP},
            "uvicorn main:app --host 0.0.0.0 --port $PORT",
        ),
        (
            {"requirements.txt": "fastapi\nhypercorn\n", "app/main.py": FASTAPI_APP},
            "hypercorn app.main:app --bind 0.0.0.0:$PORT",
        ),
        (
            {"requirements.txt": "flask\nwaitress\n", "wsgi.py": FLASK_APP},
            "waitress-serve --listen=0.0.0.0:$PORT wsgi:app",
        ),
        (
            {
                "requirements.txt": "-r base.txt\n",
                "base.txt": "Flask==2.0\ngunicorn==20.1\n",
                "app.py": "from myapp import create_app\napp = create_app()\nimport flask\n",
            },
            "gunicorn --bind 0.0.0.0:$PORT app:app",
        ),
        ({"requirements.txt": "flask\n", "main.py": FLASK_APP}, "python main.py"),
        ({"requirements.txt": "requests\n", "bot.py": "print('hi')\n"}, "python bot.py"),
        (
            {
                "requirements.txt": "Django==4.2\ngunicorn\n",
                "manage.py": "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n",
                "mysite/settings.py": "",
                "mysite/wsgi.py": "",
            },
            "gunicorn --bind 0.0.0.0:$PORT mysite.wsgi",
        ),
        (
            {
                "pyproject.toml": (
                    "[tool.poetry.dependencies]\npython='^3.9'\nflask='^2'\ngunicorn='*'\n"
                ),
                "poetry.lock": "[[package]]\nname='flask'\nversion='2.3.0'\n",
                "app.py": FLASK_APP,
            },
            "gunicorn --bind 0.0.0.0:$PORT app:app",
        ),
        (
            {"Pipfile": "[packages]\nfastapi='*'\nuvicorn='*'\n", "main.py": FASTAPI_APP},
            "uvicorn main:app --host 0.0.0.0 --port $PORT",
        ),
    ],
)
def test_python_default_start(work_dir: Path, files: dict[str, str], start: str) -> None:
    assert plan(work_dir, files).start_command == start


@pytest.mark.parametrize(
    ("files", "manager", "dependency_files"),
    [
        (
            {"pyproject.toml": "[project]\nname='x'\n", "uv.lock": "", "main.py": ""},
            "uv",
            ("pyproject.toml", "uv.lock"),
        ),
        (
            {"pyproject.toml": "[tool.poetry]\n", "poetry.lock": "", "main.py": ""},
            "poetry",
            ("pyproject.toml", "poetry.lock"),
        ),
        (
            {"Pipfile": "[packages]\n", "Pipfile.lock": '{"default": {}}', "main.py": ""},
            "pipenv",
            ("Pipfile.lock",),
        ),
        ({"Pipfile": "[packages]\n", "main.py": ""}, "pipenv", ("Pipfile",)),
        (
            {"pyproject.toml": "[project]\nname='x'\ndependencies=['flask']\n", "main.py": ""},
            "pyproject",
            ("pyproject.toml",),
        ),
        (
            {
                "requirements.txt": "-r a.txt\n-c c.txt\n",
                "a.txt": "x\n",
                "c.txt": "x==1\n",
                "main.py": "",
            },
            "pip",
            ("requirements.txt", "a.txt", "c.txt"),
        ),
        ({"main.py": "print(1)\n"}, None, ()),
    ],
)
def test_python_dependency_declarations(
    work_dir: Path, files: dict[str, str], manager: str | None, dependency_files: tuple[str, ...]
) -> None:
    result = plan(work_dir, files)
    assert (result.provider, result.package_manager) == ("python", manager)
    assert result.dependency_files == dependency_files


def test_python_version_requests_are_noted_not_refused(work_dir: Path) -> None:
    result = plan(work_dir / "a", {".python-version": "3.12\n", "main.py": ""})
    assert result.requested_runtime_version == "3.12"
    assert any("only Python 3.11.2" in n for n in result.notes)
    same = plan(work_dir / "b", {"runtime.txt": "python-3.11.9\n", "main.py": ""})
    assert not same.notes
    spec = plan(
        work_dir / "c", {"pyproject.toml": "[project]\nrequires-python='>=3.12'\n", "main.py": ""}
    )
    assert any(">=3.12" in n for n in spec.notes)


def test_pip_freeze_artifacts_are_noted(work_dir: Path) -> None:
    result = plan(
        work_dir, {"requirements.txt": "pkg-resources==0.0.0\nflask==2.0\n", "main.py": ""}
    )
    assert any("pkg-resources" in n for n in result.notes)


# ---- Node -----------------------------------------------------------------------------------


def pkg(**fields: object) -> str:
    return json.dumps({"name": "x", "version": "1.0.0", **fields})


@pytest.mark.parametrize(
    ("files", "manager", "install", "build", "start"),
    [
        (
            {"package.json": pkg(scripts={"start": "node s.js"}), "package-lock.json": "{}"},
            "npm",
            "npm ci --include=dev --no-audit --no-fund",
            None,
            "npm start",
        ),
        (
            {
                "package.json": pkg(
                    scripts={"build": "next build", "start": "next start"},
                    dependencies={"next": "14"},
                ),
                "yarn.lock": "# yarn lockfile v1\n",
            },
            "yarn",
            "yarn install --frozen-lockfile --production=false --non-interactive",
            "yarn run build",
            "yarn start",
        ),
        (
            {
                "package.json": pkg(packageManager="pnpm@9.1.0", scripts={"start": "x"}),
                "pnpm-lock.yaml": "",
            },
            "pnpm@9.1.0",
            "pnpm install --frozen-lockfile --prod=false",
            None,
            "pnpm start",
        ),
        (
            {"package.json": pkg(main="lib/server.js"), "lib/server.js": ""},
            "npm",
            "npm install --include=dev --no-audit --no-fund",
            None,
            "node lib/server.js",
        ),
        (
            {"package.json": pkg(), "index.js": ""},
            "npm",
            "npm install --include=dev --no-audit --no-fund",
            None,
            "node index.js",
        ),
        (
            {"package.json": pkg(dependencies={"next": "14"}, scripts={"build": "next build"})},
            "npm",
            "npm install --include=dev --no-audit --no-fund",
            "npm run build",
            "next start",
        ),
    ],
)
def test_node(
    work_dir: Path,
    files: dict[str, str],
    manager: str,
    install: str,
    build: str | None,
    start: str,
) -> None:
    result = plan(work_dir, files)
    assert result.provider == "node"
    assert (result.package_manager, result.install_command) == (manager, install)
    assert (result.build_command, result.start_command) == (build, start)


def test_node_static_build_output_and_engines(work_dir: Path) -> None:
    files = {
        "package.json": pkg(
            scripts={"build": "vite build"}, devDependencies={"vite": "5"}, engines={"node": "18.x"}
        )
    }
    result = plan(work_dir, files)
    assert (result.start_command, result.static_dir, result.spa) == (None, "dist", True)
    assert any("Node 18.x" in n for n in result.notes)


def test_node_without_start_is_a_clear_error(work_dir: Path) -> None:
    with pytest.raises(PlanError, match="start"):
        plan(work_dir, {"package.json": pkg(scripts={"test": "jest"})})


def test_node_broken_package_json(work_dir: Path) -> None:
    with pytest.raises(PlanError, match=r"package\.json is not valid JSON"):
        plan(work_dir, {"package.json": "{ nope"})


# ---- static ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "static_dir", "spa"),
    [
        ({"index.html": ""}, ".", True),
        ({"public/index.html": ""}, "public", True),
        ({"dist/index.html": "", "dist/404.html": ""}, "dist", False),
        ({"build/index.html": ""}, "build", True),
    ],
)
def test_static_sites(work_dir: Path, files: dict[str, str], static_dir: str, spa: bool) -> None:
    result = plan(work_dir, files)
    assert (result.provider, result.static_dir, result.spa) == ("static", static_dir, spa)
    assert f"pm2 serve {static_dir} $PORT" in "\n".join(render_plan(result))


# ---- config-as-code, Procfile and precedence ------------------------------------------------


def test_precedence_settings_config_procfile_provider(work_dir: Path) -> None:
    files = {
        "requirements.txt": "gunicorn\nflask\n",
        "app.py": FLASK_APP,
        "Procfile": "web: gunicorn app:app --workers 3\nrelease: python migrate.py\n",
        "railway.toml": '[build]\nbuildCommand = "make assets"\n[deploy]\n'
        'healthcheckPath = "/ready"\nnumReplicas = 2\n',
    }
    result = plan(work_dir, files)
    assert result.start_command == "gunicorn app:app --workers 3"
    assert result.origin("start_command") == "Procfile"
    assert (result.build_command, result.origin("build_command")) == ("make assets", "railway.toml")
    assert (result.healthcheck_path, result.num_replicas) == ("/ready", 2)
    assert result.pre_deploy_commands == ("python migrate.py",)

    overrides = ServiceOverrides(
        start_command="gunicorn app:app -b [::]:$PORT",
        healthcheck_path="/live",
        num_replicas=3,
        restart_policy_type=RestartPolicyType.NEVER,
    )
    result = plan_build(work_dir, overrides, runtimes=RUNTIMES)
    assert result.start_command == "gunicorn app:app -b [::]:$PORT"
    assert result.origin("start_command") == "service settings"
    assert (result.healthcheck_path, result.num_replicas) == ("/live", 3)
    assert result.restart_policy_type is RestartPolicyType.NEVER
    assert result.build_command == "make assets"  # not overridden: config still applies

    (work_dir / "railway.toml").write_text('[deploy]\nstartCommand = "python app.py"\n')
    assert plan_build(work_dir, runtimes=RUNTIMES).start_command == "python app.py"


def test_railway_json_full_schema_and_environments(work_dir: Path) -> None:
    config = {
        "$schema": "https://railway.com/railway.schema.json",
        "build": {
            "builder": "nixpacks",
            "buildCommand": "npm run build",
            "watchPatterns": ["src/**"],
            "nixpacksPlan": {"x": 1},
        },
        "deploy": {
            "startCommand": "node dist/server.js",
            "preDeployCommand": "npm run migrate",
            "healthcheckPath": "/health",
            "healthcheckTimeout": 100,
            "restartPolicyType": "always",
            "restartPolicyMaxRetries": 0,
            "numReplicas": 2,
            "cronSchedule": "*/5 * * * *",
            "overlapSeconds": 20,
            "drainingSeconds": 10,
            "sleepApplication": False,
            "somethingNew": 1,
        },
        "environments": {"staging": {"deploy": {"numReplicas": 1, "startCommand": "node s.js"}}},
    }
    files = {"package.json": pkg(), "railway.json": json.dumps(config)}
    result = plan(work_dir, files)
    assert result.builder == "NIXPACKS"
    assert result.restart_policy_type is RestartPolicyType.ALWAYS
    assert (result.restart_policy_max_retries, result.num_replicas) == (0, 2)
    assert (result.cron_schedule, result.overlap_seconds, result.draining_seconds) == (
        "*/5 * * * *",
        20,
        10,
    )
    assert result.pre_deploy_commands == ("npm run migrate",)
    assert any("deploy.somethingNew" in n for n in result.notes)
    staging = plan_build(work_dir, environment_name="staging", runtimes=RUNTIMES)
    assert (staging.num_replicas, staging.start_command) == (1, "node s.js")
    assert staging.healthcheck_path == "/health"


def test_custom_config_path(work_dir: Path) -> None:
    files = {"main.py": "", "deploy/railway.prod.json": '{"deploy": {"numReplicas": 4}}'}
    tree(work_dir, files)
    result = plan_build(
        work_dir, ServiceOverrides(config_path="/deploy/railway.prod.json"), runtimes=RUNTIMES
    )
    assert result.num_replicas == 4
    with pytest.raises(PlanError, match="not found"):
        plan_build(work_dir, ServiceOverrides(config_path="missing.json"), runtimes=RUNTIMES)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("railway.json", "{ not json", "not valid JSON"),
        ("railway.json", "[1, 2]", "top level must be an object"),
        ("railway.json", '{"deploy": []}', "deploy must be an object"),
        (
            "railway.json",
            '{"deploy": {"numReplicas": "2"}}',
            "deploy.numReplicas must be an integer",
        ),
        (
            "railway.json",
            '{"deploy": {"numReplicas": true}}',
            "deploy.numReplicas must be an integer",
        ),
        (
            "railway.json",
            '{"deploy": {"numReplicas": 100000}}',
            "deploy.numReplicas must be between",
        ),
        ("railway.json", '{"deploy": {"healthcheckTimeout": NaN}}', "could not be parsed"),
        ("railway.json", '{"deploy": {"drainingSeconds": "10"}}', "deploy.drainingSeconds"),
        ("railway.json", '{"deploy": {"restartPolicyType": "SOMETIMES"}}', "restartPolicyType"),
        ("railway.json", '{"deploy": {"healthcheckPath": "health"}}', "healthcheckPath"),
        ("railway.json", '{"deploy": {"cronSchedule": "every minute"}}', "cronSchedule"),
        (
            "railway.json",
            '{"deploy": {"startCommand": 42}}',
            "deploy.startCommand must be a string",
        ),
        ("railway.json", '{"deploy": {"preDeployCommand": [1]}}', "preDeployCommand[0]"),
        ("railway.json", '{"build": {"builder": "KANIKO"}}', "build.builder"),
        ("railway.json", '{"build": {"watchPatterns": "src"}}', "watchPatterns"),
        ("railway.json", "[" * 100_000 + "]" * 100_000, "railway.json"),
        ("railway.toml", "[deploy\nstartCommand = 1", "not valid TOML"),
        ("railway.toml", "[deploy]\nnumReplicas = 0\n", "deploy.numReplicas must be between"),
    ],
)
def test_bad_config_files_name_the_file_and_field(
    work_dir: Path, name: str, text: str, message: str
) -> None:
    with pytest.raises(PlanError) as caught:
        plan(work_dir, {"main.py": "", name: text})
    assert name in caught.value.message
    assert message in caught.value.message


def test_hostile_config_files(work_dir: Path) -> None:
    (work_dir / "main.py").write_text("")
    (work_dir / "railway.json").symlink_to("/etc/passwd")
    with pytest.raises(PlanError) as caught:
        plan(work_dir)
    assert "outside the source tree" in caught.value.message
    assert "root:" not in caught.value.message
    (work_dir / "railway.json").unlink()
    (work_dir / "railway.json").write_bytes(b'{"deploy": {"startCommand": "\xff\xfe"}}')
    with pytest.raises(PlanError, match="not valid UTF-8"):
        plan(work_dir)
    (work_dir / "railway.json").write_text(" " * (300 * 1024))
    with pytest.raises(PlanError, match="too large"):
        plan(work_dir)


def test_procfile_parsing() -> None:
    procfile = parse_procfile(
        "# comment\n\nweb: gunicorn app:app\nworker:python w.py\n"
        "release: ./migrate.sh\nweb: python other.py\n"
    )
    assert procfile.web == "python other.py"
    assert procfile.get("worker") == "python w.py"
    assert procfile.release == "./migrate.sh"
    with pytest.raises(PlanError, match="line 1"):
        parse_procfile("this is not a procfile\n")
    with pytest.raises(PlanError, match="empty command"):
        parse_procfile("web:\n")


def test_procfile_worker_only_and_extra_processes(work_dir: Path) -> None:
    result = plan(work_dir / "a", {"Procfile": "worker: python bot.py\n", "bot.py": ""})
    assert result.start_command == "python bot.py"
    extra = plan(work_dir / "b", {"Procfile": "web: python a.py\nclock: python c.py\n", "a.py": ""})
    assert any("clock" in n for n in extra.notes)
    assert extra.processes == (("web", "python a.py"), ("clock", "python c.py"))


def test_unrecognised_tree_says_what_was_looked_for(work_dir: Path) -> None:
    with pytest.raises(PlanError) as caught:
        plan(work_dir, {"main.go": "package main\n", "README.md": ""})
    message = caught.value.message
    for looked_for in ("requirements.txt", "package.json", "index.html", "Procfile"):
        assert looked_for in message
    assert "main.go" in message


def test_a_start_command_alone_is_enough(work_dir: Path) -> None:
    result = plan(work_dir, {"railway.json": '{"deploy": {"startCommand": "./server"}}'})
    assert (result.provider, result.start_command) == ("command", "./server")


def test_render_serialise_and_report(work_dir: Path) -> None:
    tree(
        work_dir,
        {
            "requirements.txt": "flask\ngunicorn\n",
            "app.py": FLASK_APP,
            "runtime.txt": "python-3.8.10\n",
        },
    )
    reporter = MemoryReporter()
    result = plan_and_report(work_dir, None, reporter, runtimes=RUNTIMES)
    assert reporter.stages == [("plan", "running"), ("plan", "succeeded")]
    assert "==> Build plan" in reporter.text
    assert "gunicorn --bind 0.0.0.0:$PORT app:app   [python provider]" in reporter.text
    assert "note: runtime.txt asks for Python 3.8.10" in reporter.text
    assert BuildPlan.from_dict(json.loads(json.dumps(result.to_dict()))) == result

    failing = MemoryReporter()
    with pytest.raises(PlanError):
        plan_and_report(work_dir / "missing", None, failing, runtimes=RUNTIMES)
    assert failing.stages[-1] == ("plan", "failed")


def test_version_ranges() -> None:
    assert python_spec_allows(">=3.9,<4", "3.11.2") is True
    assert python_spec_allows("~=3.10", "3.11.2") is True
    assert python_spec_allows("==3.12.*", "3.11.2") is False
    assert python_spec_allows(">=3.12", "3.11.2") is False
    assert node_range_allows(">=18", "20.20.2") is True
    assert node_range_allows("^20.1.0", "20.20.2") is True
    assert node_range_allows("18.x || 20.x", "20.20.2") is True
    assert node_range_allows("~16.14", "20.20.2") is False
    assert node_range_allows("16 - 18", "20.20.2") is False
