"""People-level studies without hand-made files: simulated participants with a stated noise
model (`noise`), and the held-out items every annotator is asked for, so the human ceiling can be
measured (`overlap`)."""
