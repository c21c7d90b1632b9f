"""Experiments on routing changes: randomisation, design (power), analysis, reports.

``randomise.arm_of`` is the call the router makes at tick time; ``design.plan`` sizes a test;
``analyse.analyse`` turns a log into a :class:`~assign.experiment.analyse.Readout`, choosing
the method the design needs (``smallsample``: CR2 and the wild cluster bootstrap for few
clusters; ``switchback``: randomisation inference); ``report.write_report`` renders it.
Heavy imports (matplotlib) happen inside the report.
"""
from assign.experiment.randomise import (
    AssignmentLog,
    Switchback,
    arm_of,
    arms_of,
    hash_uniform,
)

__all__ = ["AssignmentLog", "Switchback", "arm_of", "arms_of", "hash_uniform"]
