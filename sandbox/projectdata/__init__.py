"""Project Online ProjectData (OData v3) simulator serving the seeded portfolio (see ``server``)."""

from sandbox.projectdata.server import PAGE_CAPS, ProjectDataSimulator, ProjectOnlineData

__all__ = ["PAGE_CAPS", "ProjectDataSimulator", "ProjectOnlineData"]
