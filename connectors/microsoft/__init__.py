"""Microsoft sources: Planner (Graph v1.0), Project Online / Server (ProjectData) and project files."""
