"""`convert_checkpoint`: another format's BERT directory -> our format, all or nothing."""

from keras_bert_x.convert.reader import read_checkpoint


def convert_checkpoint(input_dir, output_dir, source=None, overwrite=False):
    """Reads `input_dir` (HF, Google TF1 or Model Garden) and writes our format to `output_dir`.

    Every tensor is checked before anything is written; the output directory appears only when
    the whole model was saved. Returns the `Checkpoint` that was read.
    """
    from keras_bert_x.models.encoder import BertEncoder

    checkpoint = read_checkpoint(input_dir, source=source)
    BertEncoder.from_checkpoint(checkpoint).save_pretrained(output_dir, overwrite=overwrite)
    return checkpoint
