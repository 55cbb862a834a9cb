"""Jira Cloud / Data Center simulator serving the seeded portfolio (see ``server``)."""

from sandbox.jira.server import JiraSimulator, SimConfig

__all__ = ["JiraSimulator", "SimConfig"]
