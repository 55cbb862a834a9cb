"""Dataverse (Planner premium) simulator with seeded plans (see ``server``)."""

from sandbox.dataverse.server import DataverseData, DataverseSimulator

__all__ = ["DataverseData", "DataverseSimulator"]
