"""encoder.py: the BERT MLM encoder with dense + sparse views; cotmae.py: the pre-training decoders and model."""
