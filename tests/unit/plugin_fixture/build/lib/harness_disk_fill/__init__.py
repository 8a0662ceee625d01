"""A third-party fault, as a team would ship one: its catalogue entry and its lab
implementation, registered the same way as the harness's own."""
from __future__ import annotations

from pathlib import Path

from harness.catalogue import DURATION, FaultKind, add_fault_kind
from harness.faults.base import Fault
from harness.targets import registry

add_fault_kind(FaultKind(
    "disk-fill",
    "Fill a directory with a file of the given size. What to verify: the disk alert fires, clean-up works.",
    {"path": {"type": "string"}, "megabytes": {"type": "integer", "minimum": 1}, "settle": DURATION},
    required=("path", "megabytes"),
))


@registry.fault("lab")
class LabDiskFill(Fault):
    kind = "disk-fill"

    def problems(self):
        return [] if Path(self.params["path"]).is_dir() else [f"no directory {self.params['path']}"]

    def prepare(self):
        return {"file": str(Path(self.params["path"]) / "harness-disk-fill.bin")}

    def inject(self, state):
        with open(state["file"], "wb") as f:
            f.truncate(int(self.params["megabytes"]) * 1024 * 1024)

    def revert(self, state):
        Path(state["file"]).unlink(missing_ok=True)
