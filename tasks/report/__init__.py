"""report: gates, the compliance.json contract and its HTML rendering (pure: the flow does the I/O)."""
