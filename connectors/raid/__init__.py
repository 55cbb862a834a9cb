"""RAID logs (risk and issue registers) kept as workbooks or CSV files, mapped by profiles."""

from connectors.raid.config import RaidSource
from connectors.raid.profiles import ProfileError, RaidProfile, load_profile
from connectors.raid.reader import RaidFile, RaidFileError
from connectors.raid.stream import RaidStream

__all__ = [
    "ProfileError",
    "RaidFile",
    "RaidFileError",
    "RaidProfile",
    "RaidSource",
    "RaidStream",
    "load_profile",
]
