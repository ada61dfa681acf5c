"""A trained model -> the world: export, card, evaluation, generation, web demo, Hub push."""
