"""CLI commands of the month-end close reports (registered on `stockledger report`)."""
