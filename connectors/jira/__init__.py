"""Jira Cloud and Data Center: projects, issues, people, worklogs, changelogs and deletions."""
