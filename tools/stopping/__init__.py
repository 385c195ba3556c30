"""Stopping rules and the evidence they read from a run's files."""
