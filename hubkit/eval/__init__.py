"""Evaluation: answer scoring for the study's benchmarks, and metrics as local `evaluate` modules."""
