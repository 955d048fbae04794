"""knevents: Argo Events' EventSource/Sensor model as stateless CloudEvents functions.

The package root stays import-light on purpose: functions scale from zero, so
nothing heavy is imported until the code that needs it runs.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
