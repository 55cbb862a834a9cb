"""ERP finance exports (CSV/XLSX) of actual costs and budgets, mapped by profiles."""

from connectors.finance.config import FinanceSource
from connectors.finance.profiles import Profile, ProfileError, load_profile
from connectors.finance.reader import ExportFile, FileFormatError
from connectors.finance.stream import FinanceStream

__all__ = [
    "ExportFile",
    "FileFormatError",
    "FinanceSource",
    "FinanceStream",
    "Profile",
    "ProfileError",
    "load_profile",
]
