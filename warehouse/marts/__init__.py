"""Marts for BI: conformed dimensions, facts and ``rpt_*`` views over the reconciled warehouse.

``warehouse.marts.refresh.refresh_marts(engine, at)`` rebuilds them after each reconciliation;
``docs/data_dictionary.md`` describes every table, view and column (regenerate it with
``python -m warehouse.marts.docs``). This package file imports nothing: ``warehouse.schema`` imports
``warehouse.marts.tables`` to register the tables, and that must not drag the refresh machinery (crosswalks,
rules, which import the schema) in with it.
"""
