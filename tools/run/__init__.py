"""The run directory: the only code that reads, writes or names a file inside a run."""
