"""Balance suggestions: which conversations would make a training file's distribution even."""
