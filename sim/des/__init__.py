"""The discrete-event engine (SimPy, one event per tile transfer / tile compute).

``simulate_model(model, arch)`` times every layer from the same Mapping the analytic
model uses and returns a :class:`DesRun` (the ModelResult, its optional Chrome trace and
the number of SimPy events). See :mod:`sim.des.engine` for what is modelled.
"""
from .layer import (DEFAULT_LIMIT, DesRun, Trace, check_fits, hardware, simulate_mac,
                    simulate_model, simulate_op)
from .program import Program, mac_program, op_program

__all__ = ["DEFAULT_LIMIT", "DesRun", "Program", "Trace", "check_fits", "hardware",
           "mac_program", "op_program", "simulate_mac", "simulate_model", "simulate_op"]
