"""`make demo`: raw text to a served model, on embedded defaults, offline.

Stages (`keras_bert_x.demo.stages`): a WordPiece vocabulary learned on the bundled Brown corpus;
pretraining data (NSP pairs, whole-word masking); bert_tiny pretrained on it (MLM + NSP
curves); the packaged MiniLM-L6 converted and fine-tuned on MR sentiment; a TF Serving
SavedModel and TFLite files (float32, dynamic int8); a parity table (Keras vs the SavedModel in
a fresh process vs TFLite); `demo_out/report.md` with tables and PNG plots. Finished stages are
kept: a second run reuses them, an interrupted one resumes (`--fresh` redoes everything).
"""
