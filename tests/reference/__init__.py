"""An independent reference model of a bittide system, for the tests.

:mod:`reference.model` re-implements the model of ``docs/model.md`` frame by
frame in plain Python, from the documented equations alone: it shares no code
with ``tidesim``'s kernels or controllers, so a comparison with it can see bugs
that the two fidelities of the core share.
"""
