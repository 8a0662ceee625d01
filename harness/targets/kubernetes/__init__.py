"""A Kubernetes cluster as a target (see :mod:`harness.targets.kubernetes.target`)."""
from harness.targets.kubernetes.target import KubernetesTarget

__all__ = ["KubernetesTarget"]
