"""Pretraining data: corpus reading, example generation, TFRecord and dynamic-masking datasets."""
