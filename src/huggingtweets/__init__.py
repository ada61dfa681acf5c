"""huggingtweets: fine-tune a causal LM on one person's (or a mix of people's) posts."""
