"""The one read model the CLI and the dashboard share: readings, summaries, runs, quarantine,
overview, digest, patient views and the plain-words text of every reason."""
