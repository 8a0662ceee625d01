"""The lab's checks: one module per kind of mechanism, each registered with ``@registry.check("lab")``."""
