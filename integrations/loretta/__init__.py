"""loretta: LoRETTA tensor-train adapters for Hugging Face transformers."""
