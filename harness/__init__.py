"""Resilience harness: chaos experiments under load, with SLO-based verdicts."""
from harness.errors import (
    EnvironmentNotReady,
    ExperimentAborted,
    ExperimentFailed,
    FaultError,
    HarnessError,
    InvalidInput,
)

__version__ = "0.1.0"
__all__ = [
    "EnvironmentNotReady",
    "ExperimentAborted",
    "ExperimentFailed",
    "FaultError",
    "HarnessError",
    "InvalidInput",
    "__version__",
]
