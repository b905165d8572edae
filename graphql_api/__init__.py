"""Training Files API: enriched conversations in, LoRA training files out."""
