"""The local lab as a target (see :mod:`harness.targets.lab.target`)."""
from harness.targets.lab.target import LabTarget

__all__ = ["LabTarget"]
