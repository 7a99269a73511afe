"""Fine-tuning data: readers for classification tables, CoNLL/BIO tags and SQuAD JSON, their
alignment to WordPiece inputs, and the real data sets this project is measured on."""
