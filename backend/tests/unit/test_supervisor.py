"""The supervisor of `caboosed up`, driven with small real children (`python -c` scripts)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from caboose.server.supervisor import (
    ChildSpec,
    ChildStartError,
    ChildState,
    MemorySink,
    RestartPolicy,
    StopRequestedError,
    Supervisor,
    TerminalSink,
    kill_recorded,
)

# A child that says hello, then waits; on its stop signal it says which one and exits 0.
SERVER = """
import signal, sys, time
def bye(signum, frame):
    print("bye", signal.Signals(signum).name, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
signal.signal(signal.SIGQUIT, bye)
print("hello", flush=True)
while True:
    time.sleep(1)
"""


def py(script: str) -> list[str]:
    return [sys.executable, "-u", "-c", textwrap.dedent(script)]


def is_gone(pid: int) -> bool:
    """Exited (a zombie counts: its parent, not us, may be the one to reap it)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def pump_until(supervisor: Supervisor, condition: Callable[[], bool], timeout_s: float = 10.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        supervisor.pump(0.05)


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def supervisor(sink: MemorySink, tmp_path: Path) -> Iterator[Supervisor]:
    sup = Supervisor(sink=sink, state_file=tmp_path / "children.json")
    try:
        yield sup
    finally:
        sup.stop_all()
        sup.close()


def test_output_is_forwarded_line_by_line_and_stop_goes_in_reverse_order(
    supervisor: Supervisor, sink: MemorySink
) -> None:
    for name in ("first", "second", "third"):
        supervisor.add(ChildSpec(name=name, argv=py(SERVER)))
        supervisor.start(name)
    pump_until(supervisor, lambda: all(sink.of(n) for n in ("first", "second", "third")))
    assert sink.of("first") == ["hello"]

    supervisor.stop_all()

    byes = [name for name, line in sink.lines if line.startswith("bye")]
    assert byes == ["third", "second", "first"]
    assert all(s.state is ChildState.STOPPED and s.pid is None for s in supervisor.statuses())
    assert all(s.exit_code == 0 for s in supervisor.statuses())


def test_each_child_gets_its_own_stop_signal(supervisor: Supervisor, sink: MemorySink) -> None:
    supervisor.add(ChildSpec(name="worker", argv=py(SERVER), stop_signal=signal.SIGQUIT))
    supervisor.start("worker")
    pump_until(supervisor, lambda: bool(sink.of("worker")))
    supervisor.stop("worker")
    assert sink.of("worker") == ["hello", "bye SIGQUIT"]


def test_children_run_in_their_own_session(supervisor: Supervisor) -> None:
    """So a Ctrl-C in the terminal reaches the supervisor only."""
    supervisor.add(ChildSpec(name="child", argv=py(SERVER)))
    supervisor.start("child")
    pid = supervisor.status("child").pid
    assert pid is not None
    assert os.getsid(pid) == pid != os.getsid(0)
    assert os.getpgid(pid) == pid


def test_start_waits_for_the_ready_check(supervisor: Supervisor, tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    script = f"""
        import pathlib, time
        time.sleep(0.3)
        pathlib.Path({str(marker)!r}).touch()
        time.sleep(60)
    """
    supervisor.add(ChildSpec(name="slow", argv=py(script), ready=marker.exists))
    supervisor.start("slow")
    assert marker.exists()
    assert supervisor.status("slow").state is ChildState.RUNNING


def test_a_ready_check_that_raises_counts_as_not_ready(supervisor: Supervisor) -> None:
    calls = []

    def probe() -> bool:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError
        return True

    supervisor.add(ChildSpec(name="probed", argv=py(SERVER), ready=probe))
    supervisor.start("probed")
    assert len(calls) == 3


def test_a_child_that_exits_during_start_up_fails_the_start_with_its_output(
    supervisor: Supervisor,
) -> None:
    script = """
        import sys
        print("address already in use", flush=True)
        sys.exit(3)
    """
    supervisor.add(ChildSpec(name="broken", argv=py(script), ready=lambda: False))
    with pytest.raises(ChildStartError) as excinfo:
        supervisor.start("broken")
    message = str(excinfo.value)
    assert "broken exited during start-up (exit code 3)" in message
    assert "address already in use" in message
    assert supervisor.status("broken").state is ChildState.FAILED
    assert supervisor.status("broken").restarts == 0  # a start failure is not retried


def test_a_child_that_never_gets_ready_is_stopped_and_reported(supervisor: Supervisor) -> None:
    supervisor.add(
        ChildSpec(name="stuck", argv=py(SERVER), ready=lambda: False, ready_timeout_s=0.3)
    )
    with pytest.raises(ChildStartError, match=r"stuck was not ready after 0.3 s"):
        supervisor.start("stuck")
    assert supervisor.status("stuck").pid is None


def test_a_killed_child_is_restarted(supervisor: Supervisor, sink: MemorySink) -> None:
    supervisor.add(
        ChildSpec(name="api", argv=py(SERVER), restart=RestartPolicy(initial_delay_s=0.05))
    )
    supervisor.start("api")
    pump_until(supervisor, lambda: sink.of("api") == ["hello"])
    first = supervisor.status("api").pid
    assert first is not None

    os.kill(first, signal.SIGKILL)
    pump_until(supervisor, lambda: supervisor.status("api").pid not in (None, first))

    status = supervisor.status("api")
    assert status.state is ChildState.RUNNING
    assert status.restarts == 1
    assert is_gone(first)
    pump_until(supervisor, lambda: sink.of("api") == ["hello", "hello"])


def test_restarts_back_off_and_give_up_after_max_attempts(
    supervisor: Supervisor, caplog: pytest.LogCaptureFixture
) -> None:
    spawned: list[float] = []
    policy = RestartPolicy(initial_delay_s=0.05, factor=2.0, max_attempts=3, stable_after_s=60)
    script = """
        import sys
        print("crashing", flush=True)
        sys.exit(2)
    """
    supervisor.add(
        ChildSpec(
            name="crashy",
            argv=py(script),
            restart=policy,
            on_spawn=lambda _pid: spawned.append(time.monotonic()),
        )
    )
    supervisor.start("crashy")
    pump_until(supervisor, lambda: supervisor.status("crashy").state is ChildState.FAILED)

    assert supervisor.status("crashy").restarts == 3
    assert len(spawned) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(spawned)]
    # Each restart waits at least its delay: 0.05, 0.1, 0.2 s (never sooner).
    for gap, delay in zip(gaps, (0.05, 0.1, 0.2), strict=True):
        assert gap >= delay
    assert "crashy exited (exit code 2) 4 times in a row: giving up" in caplog.text


def test_restart_policy_delays_double_up_to_the_cap() -> None:
    policy = RestartPolicy(initial_delay_s=0.5, factor=2.0, max_delay_s=3.0)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_child_ignoring_its_stop_signal_is_killed_after_the_timeout(
    supervisor: Supervisor, sink: MemorySink
) -> None:
    script = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stubborn", flush=True)
        while True:
            time.sleep(1)
    """
    supervisor.add(ChildSpec(name="stubborn", argv=py(script), stop_timeout_s=0.3))
    supervisor.start("stubborn")
    pump_until(supervisor, lambda: bool(sink.of("stubborn")))  # its handler is in place
    pid = supervisor.status("stubborn").pid
    assert pid is not None
    supervisor.stop("stubborn")
    assert supervisor.status("stubborn").exit_code == -signal.SIGKILL
    assert is_gone(pid)


GROUP_LEADER = """
    import subprocess, sys, time
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print(helper.pid, flush=True)
    while True:
        time.sleep(1)
"""


def test_helpers_of_a_dead_child_are_killed_with_it(
    supervisor: Supervisor, sink: MemorySink
) -> None:
    """Like Celery's pool processes when the worker's main process dies."""
    supervisor.add(
        ChildSpec(name="leader", argv=py(GROUP_LEADER), restart=RestartPolicy(initial_delay_s=5))
    )
    supervisor.start("leader")
    pump_until(supervisor, lambda: bool(sink.of("leader")))
    helper = int(sink.of("leader")[0])
    leader = supervisor.status("leader").pid
    assert leader is not None

    os.kill(leader, signal.SIGKILL)
    pump_until(supervisor, lambda: supervisor.status("leader").state is ChildState.BACKOFF)
    pump_until(supervisor, lambda: is_gone(helper))


def test_stop_leaves_nothing_of_the_group(supervisor: Supervisor, sink: MemorySink) -> None:
    supervisor.add(ChildSpec(name="leader", argv=py(GROUP_LEADER)))
    supervisor.start("leader")
    pump_until(supervisor, lambda: bool(sink.of("leader")))
    helper = int(sink.of("leader")[0])
    supervisor.stop("leader")
    pump_until(supervisor, lambda: is_gone(helper))


def test_request_stop_from_another_thread_ends_run(supervisor: Supervisor) -> None:
    supervisor.add(ChildSpec(name="child", argv=py(SERVER)))
    supervisor.start("child")
    timer = threading.Timer(0.2, supervisor.request_stop)
    timer.start()
    try:
        supervisor.run()
    finally:
        timer.cancel()
    assert supervisor.stop_requested
    assert supervisor.status("child").state is ChildState.RUNNING  # run() stops nothing itself


def test_sigterm_ends_run_and_a_child_exit_wakes_the_loop(supervisor: Supervisor) -> None:
    supervisor.add(
        ChildSpec(name="child", argv=py(SERVER), restart=RestartPolicy(initial_delay_s=0.01))
    )
    supervisor.start("child")
    first = supervisor.status("child").pid
    assert first is not None
    with supervisor.handle_signals():
        os.kill(first, signal.SIGKILL)
        supervisor.run(until=lambda: supervisor.status("child").restarts == 1)
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()
        supervisor.run()
    assert supervisor.stop_signal == signal.SIGTERM
    # Restored: SIGTERM is Python's default again.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_stop_requested_during_start_up_interrupts_it(supervisor: Supervisor) -> None:
    supervisor.add(ChildSpec(name="never", argv=py(SERVER), ready=lambda: False))
    threading.Timer(0.2, supervisor.request_stop).start()
    with pytest.raises(StopRequestedError):
        supervisor.start("never")


def test_no_restart_once_stopping(supervisor: Supervisor) -> None:
    supervisor.add(
        ChildSpec(name="child", argv=py(SERVER), restart=RestartPolicy(initial_delay_s=0.01))
    )
    supervisor.start("child")
    supervisor.request_stop()
    pid = supervisor.status("child").pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        supervisor.pump(0.05)
    assert supervisor.status("child").restarts == 0


def test_an_adopted_process_is_supervised_and_restarted_from_its_spec(
    supervisor: Supervisor,
) -> None:
    argv = py(SERVER)
    adopted = subprocess.Popen(argv, stdout=subprocess.DEVNULL, start_new_session=True)
    respawned: list[int] = []
    supervisor.add(
        ChildSpec(
            name="redis",
            argv=argv,
            capture_output=False,
            restart=RestartPolicy(initial_delay_s=0.01),
            on_spawn=respawned.append,
        ),
        process=adopted,
    )
    assert supervisor.status("redis").pid == adopted.pid
    adopted.kill()
    pump_until(supervisor, lambda: bool(respawned))
    assert supervisor.status("redis").pid == respawned[0] != adopted.pid


def test_the_state_file_lets_a_later_run_stop_what_a_crashed_one_left(
    supervisor: Supervisor, tmp_path: Path, sink: MemorySink
) -> None:
    supervisor.add(ChildSpec(name="leader", argv=py(GROUP_LEADER)))
    supervisor.start("leader")
    pump_until(supervisor, lambda: bool(sink.of("leader")))
    helper = int(sink.of("leader")[0])
    leader = supervisor.status("leader").pid
    state_file = tmp_path / "children.json"
    recorded = json.loads(state_file.read_text())
    assert recorded["leader"]["pid"] == leader

    # As if this supervisor had been SIGKILLed: a new run finds the file.
    assert kill_recorded(state_file, timeout_s=5) == [leader]
    assert not state_file.exists()
    assert leader is not None
    deadline = time.monotonic() + 5
    while not (is_gone(leader) and is_gone(helper)):
        assert time.monotonic() < deadline
        supervisor.pump(0.05)


def test_kill_recorded_never_hits_a_recycled_pid(tmp_path: Path) -> None:
    state_file = tmp_path / "children.json"
    me = psutil.Process()
    state_file.write_text(
        json.dumps({"api": {"pid": me.pid, "pgid": None, "create_time": me.create_time() - 5}})
    )
    assert kill_recorded(state_file, timeout_s=0.1) == []
    assert psutil.pid_exists(me.pid)


def test_terminal_sink_prefixes_lines_and_copies_them_to_log_files(tmp_path: Path) -> None:
    class Stream:
        def __init__(self) -> None:
            self.text = ""

        def write(self, text: str) -> int:
            self.text += text
            return len(text)

        def flush(self) -> None:
            return None

    stream = Stream()
    sink = TerminalSink(stream, log_dir=tmp_path / "logs", max_log_bytes=30)  # type: ignore[arg-type]
    sink.write("api", "started")
    sink.write("worker", "ready")
    assert stream.text == "api      | started\nworker   | ready\n"
    for i in range(5):
        sink.write("api", f"line {i}")
    sink.close()
    logs = tmp_path / "logs"
    assert (logs / "worker.log").read_text() == "ready\n"
    rotated = (logs / "api.log.1").read_text()
    assert rotated.startswith("started\nline 0\n")
    assert (logs / "api.log").read_text().endswith("line 4\n")


def test_children_do_not_inherit_ignored_stop_signals(
    supervisor: Supervisor, sink: MemorySink
) -> None:
    """Shells start background jobs with SIGINT and SIGQUIT ignored; a child inheriting that
    would miss its stop signal (the worker's is SIGQUIT) while it boots."""
    script = """
        import signal
        print(signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN, flush=True)
    """
    previous = signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    try:
        with supervisor.handle_signals():
            supervisor.add(ChildSpec(name="probe", argv=py(script), restart=None))
            supervisor.start("probe")
            pump_until(supervisor, lambda: bool(sink.of("probe")))
        assert signal.getsignal(signal.SIGQUIT) == signal.SIG_IGN  # restored
    finally:
        signal.signal(signal.SIGQUIT, previous)
    assert sink.of("probe") == ["False"]


def test_a_one_shot_child_that_succeeds_is_stopped_not_failed(
    supervisor: Supervisor, sink: MemorySink
) -> None:
    supervisor.add(ChildSpec(name="build", argv=py("print('done')"), restart=None))
    supervisor.add(ChildSpec(name="broken", argv=py("raise SystemExit(2)"), restart=None))
    supervisor.start("build")
    supervisor.start("broken")
    pump_until(
        supervisor,
        lambda: all(
            s.state not in (ChildState.RUNNING, ChildState.STARTING) for s in supervisor.statuses()
        ),
    )
    build, broken = supervisor.status("build"), supervisor.status("broken")
    assert (build.state, build.exit_code) == (ChildState.STOPPED, 0)
    assert (broken.state, broken.exit_code) == (ChildState.FAILED, 2)
    assert sink.of("build") == ["done"]
