"""The runner supervisor's decisions: how long to wait before a restart, how a death reads."""

from __future__ import annotations

from app.services.runner.crashes import crash_reason
from app.services.runner.process import describe_exit, restart_delay


def test_the_restart_delay_doubles_per_quick_death_up_to_the_maximum() -> None:
    delays = [restart_delay(deaths, 0.5, 10.0) for deaths in range(1, 8)]

    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert restart_delay(0, 0.5, 10.0) == 0.5


def test_a_death_names_the_signal_or_the_exit_code() -> None:
    assert describe_exit(-9) == "killed by signal SIGKILL"
    assert describe_exit(-11) == "killed by signal SIGSEGV"
    assert describe_exit(1) == "exit code 1"
    assert describe_exit(None) == "exit status unknown"


def test_the_failure_reason_says_how_often_and_how_the_runner_died() -> None:
    assert crash_reason(2, "exit code 137") == (
        "the job's runner process died twice while running it (last: exit code 137)"
    )
    assert crash_reason(3, "killed by signal SIGKILL").startswith(
        "the job's runner process died 3 times"
    )
