"""Training (notebooks 04-06): the loop (``train.fit``), losses, learning-rate schedules, encoder freezing,
thresholds, early stopping, the checkpoint folder, the course's recipes and the proxy-task pretraining of a 2D encoder.
"""
