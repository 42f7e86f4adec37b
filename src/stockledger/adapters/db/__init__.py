"""Storage: schema, engine set-up, migrations and the queries the services use."""
