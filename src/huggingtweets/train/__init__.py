"""Prepared posts -> a trained model: tokenizer, DataModule, LightningModule, tracking, DDP. Never fetches."""
