"""CLI commands of the exports and KPI/chart reports (registered on import)."""
