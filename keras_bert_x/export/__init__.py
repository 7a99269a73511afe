"""Exports: TF Serving SavedModels that take raw text (`savedmodel`, `signatures`,
`span_answers`, `warmup`), TFLite files (`tflite`, `tflite_runner`) and the parity report
(`verify`). The command lines are `export/*.py` in the repository."""
