"""The MetaData every warehouse table registers in, and the column types the base tables and marts share.

Its own module so that ``warehouse.schema`` (the base tables) and ``warehouse.marts.tables`` (the marts)
both build on it without importing each other's half-built module.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData, Numeric

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Integer ids autoincrement on SQLite only as INTEGER; BigInteger elsewhere.
Id = BigInteger().with_variant(Integer(), "sqlite")
Money = Numeric(18, 4)
