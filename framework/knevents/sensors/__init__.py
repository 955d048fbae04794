"""Pure sensor logic: paths, expressions, templates, filters, transforms, conditions, parameters, the engine.

Nothing under this package does I/O or reads the clock; the runtime and
``knevents test`` drive it with events and a ``now``.
"""
