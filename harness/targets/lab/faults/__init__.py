"""The lab's faults: one module per fault kind, each registered with ``@registry.fault("lab")``."""
