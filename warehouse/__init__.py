"""SQL warehouse: schema, migrations, bulk loads, sync state and marts. Knows SQL, not HTTP."""
