"""Stage 5: the report. Reads records only; tables, rliable aggregates and figures."""
