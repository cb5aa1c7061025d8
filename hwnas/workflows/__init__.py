"""What a command does end to end: profiling summaries, predictor adaptation,
the search with its host-calibrated target, verification on the device and
delivery of the winner. The only package that joins the search with devices."""
