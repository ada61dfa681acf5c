"""Posts in, prepared posts out: sources, the post cache, cleaning and the data table. Knows nothing of models."""
