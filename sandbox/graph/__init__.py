"""Microsoft Graph (Planner) simulator serving the seeded portfolio (see ``server``)."""

from sandbox.graph.server import GraphSimulator, PlannerData

__all__ = ["GraphSimulator", "PlannerData"]
