"""What a researcher reads: the report, its plots, and the bundled data sets the demo uses."""
