"""One exception tree for the whole harness.

Only the CLI maps these to exit codes and prints them; library code raises them
with messages written for the person at the terminal (what happened, what to do).
"""
from __future__ import annotations

from dataclasses import dataclass


class HarnessError(Exception):
    """Base of every error the harness raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file, with where it is."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class InvalidInput(HarnessError):
    """A file or argument is malformed. Nothing was injected."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            self.problems: list[Problem] = []
            super().__init__(problems)
        else:
            self.problems = list(problems)
            super().__init__("\n".join(str(p) for p in self.problems))


class EnvironmentNotReady(HarnessError):
    """The target, lab or a tool is missing or unhealthy. Nothing was injected."""

    exit_code = 3


class TargetRefused(EnvironmentNotReady):
    """The target is not allowed (e.g. a Kubernetes context not on the allow-list)."""

    exit_code = 3


class LockHeld(EnvironmentNotReady):
    """Another experiment is running: experiments never run at once."""

    exit_code = 3


class SourceUnavailable(EnvironmentNotReady):
    """A data source (Prometheus, Alertmanager, the load generator, a cluster API)
    could not be read. While a fault is active this makes the guard blind (abort);
    for a check it means "could not verify" (the check fails)."""

    exit_code = 3


class ExperimentFailed(HarnessError):
    """The system did not behave as the hypothesis says."""

    exit_code = 1


class ExperimentAborted(HarnessError):
    """An abort condition tripped, or a person stopped the run."""

    exit_code = 4


class FaultError(HarnessError):
    """A fault could not be injected or reverted."""

    exit_code = 5


# The one exit-code table: the CLI's help and the README's table are this (a test
# compares them), and every verdict and exception maps into it.
EXIT_CODES = {
    0: "passed",
    1: "failed: the system did not hold the hypothesis (or was not in steady state)",
    2: "invalid input: nothing was run",
    3: "environment not ready or target refused: nothing was injected",
    4: "aborted: an abort condition tripped, or the guard went blind",
    5: "a fault could not be injected or reverted (run `harness cleanup`)",
    130: "interrupted by Ctrl-C or SIGTERM (faults reverted)",
}

#: verdict status -> exit code
VERDICT_EXIT = {"passed": 0, "failed": 1, "not-steady": 1, "aborted": 4, "interrupted": 130, "error": 5}
