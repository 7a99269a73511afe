"""The reference side of bench/finetune_real.py: the same recipe in Hugging Face transformers
on PyTorch, run as HF users run it. Variants (all three tasks):

- `hf_trainer`: `transformers.Trainer` with `TrainingArguments` defaults where the recipe
  allows (AdamW, which skips biases and LayerNorm; linear schedule; gradient norm 1.0). Inputs
  are tokenized without padding, truncated to the recipe's length, and each batch is padded to
  its longest (`DataCollatorWithPadding`; `DataCollatorForTokenClassification` for NER). The
  test split is scored once after training, with `Trainer.predict`.
- `hf_trainer_grouped`: the same with batches grouped by length (transformers 5 spells
  `group_by_length=True` as `train_sampling_strategy="group_by_length"`).
- `hf_fixed`: the former hand-written loop over inputs padded to the recipe's length,
  evaluated after every epoch (a footnote).

`train_and_evaluate` returns the epochs' metrics, the final ones and `timing`: wall-clock
stamps (`time.time()`) of the first step's start and end and of the last step's end, and the
seconds of evaluation between them (`hf_fixed` only); bench/finetune_real.py turns them into
start-up and training times.
"""

import collections
import math
import time

import numpy as np

INPUTS = ("input_ids", "attention_mask", "token_type_ids")

# What a task hands to either runner: inputs as lists (`train` with its labels), and
# `score(outputs)`, the test metrics from {"logits"} or {"start_logits", "end_logits"} arrays.
Spec = collections.namedtuple("Spec", "model_class model_kwargs train test score token_labels")


def _optimizer(model, recipe, total_steps):
    import torch
    from transformers import get_linear_schedule_with_warmup

    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(parameter)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=recipe["lr"], eps=1e-6)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * total_steps), total_steps)
    return optimizer, schedule


def _seeded(seed, model_class, weights, **kwargs):
    """The pretrained model with its new head drawn from the run's seed (as ours is)."""
    import torch

    torch.manual_seed(seed)
    return model_class.from_pretrained(weights, **kwargs)


def _predict(model, inputs, batch=64):
    import torch

    outputs = collections.defaultdict(list)
    n = len(next(iter(inputs.values())))
    with torch.no_grad():
        for start in range(0, n, batch):
            out = model(**{k: v[start:start + batch] for k, v in inputs.items()})
            for name in ("logits", "start_logits", "end_logits"):
                if getattr(out, name, None) is not None:
                    outputs[name].append(out[name].numpy())
    return {k: np.concatenate(v) for k, v in outputs.items()}


def _fixed_loop(model, spec, recipe, seed, tokenizer=None, grouped=False):
    """Epochs of shuffled batches (the last one partial), the test split scored after each."""
    import torch

    inputs = {k: torch.tensor(v) for k, v in spec.train.items()}
    test = {k: torch.tensor(v) for k, v in spec.test.items()}
    n = len(next(iter(inputs.values())))
    per_epoch = math.ceil(n / recipe["batch"])
    optimizer, schedule = _optimizer(model, recipe, per_epoch * recipe["epochs"])
    generator = torch.Generator().manual_seed(seed)
    history, timing = [], {"train_begin": time.time(), "paused_s": 0.0}
    for epoch in range(recipe["epochs"]):
        model.train()
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, recipe["batch"]):
            index = order[start:start + recipe["batch"]]
            loss = model(**{k: v[index] for k, v in inputs.items()}).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            timing.setdefault("first_step_end", time.time())
        timing["train_end"] = time.time()
        model.eval()
        history.append({"epoch": epoch + 1, **spec.score(_predict(model, test))})
        if epoch + 1 < recipe["epochs"]:  # evaluations between epochs are not training time
            timing["paused_s"] += time.time() - timing["train_end"]
    return {"epochs": history, "final": history[-1], "timing": timing}


def _trainer(model, spec, recipe, seed, tokenizer, grouped=False):
    """transformers.Trainer as its users run it; one `predict` on the test split at the end."""
    import tempfile

    from transformers import (DataCollatorForTokenClassification, DataCollatorWithPadding,
                              Trainer, TrainerCallback, TrainingArguments)

    class Clock(TrainerCallback):
        def __init__(self):
            self.times = {}

        def on_step_begin(self, args, state, control, **kwargs):
            self.times.setdefault("train_begin", time.time())  # at step 0

        def on_step_end(self, args, state, control, **kwargs):
            self.times.setdefault("first_step_end", time.time())
            self.times["train_end"] = time.time()

    def rows(columns):  # {name: [values]} -> [{name: value}], the dataset a collator takes
        return [dict(zip(columns, values)) for values in zip(*columns.values())]

    clock = Clock()
    with tempfile.TemporaryDirectory() as output_dir:  # required; nothing is saved there
        args = TrainingArguments(
            output_dir=output_dir, num_train_epochs=recipe["epochs"],
            per_device_train_batch_size=recipe["batch"], per_device_eval_batch_size=64,
            learning_rate=recipe["lr"], weight_decay=0.01,  # HF's default is 0
            adam_epsilon=1e-6,  # the recipe's (HF's default is 1e-8)
            warmup_steps=0.1,  # below 1: a ratio of the steps (transformers 5's warmup_ratio)
            train_sampling_strategy="group_by_length" if grouped else "random",
            seed=seed, report_to=[], save_strategy="no", use_cpu=True,
            dataloader_num_workers=0, disable_tqdm=True)  # ours runs with --noprogress
        collator = (DataCollatorForTokenClassification if spec.token_labels
                    else DataCollatorWithPadding)(tokenizer)
        trainer = Trainer(model=model, args=args, train_dataset=rows(spec.train),
                          data_collator=collator, processing_class=tokenizer, callbacks=[clock])
        trainer.train()
        # batches padded to different lengths come back concatenated, padded with -100
        out = trainer.predict(rows(spec.test)).predictions
    outputs = ({"start_logits": out[0], "end_logits": out[1]} if isinstance(out, tuple)
               else {"logits": out})
    final = spec.score(outputs)
    return {"epochs": [{"epoch": recipe["epochs"], **final}], "final": final,
            "timing": clock.times}


def classification(train_file, test_file, recipe, tokenizer, padding):
    from transformers import BertForSequenceClassification

    from keras_bert_x import metrics
    from keras_bert_x.data.tasks.classification import label_ids, label_names, read_classification

    train = read_classification(train_file, "sentence", "label")
    test = read_classification(test_file, "sentence", "label")
    labels = label_names(train)

    def encode(examples):
        enc = tokenizer(examples.texts, truncation=True, max_length=recipe["seq"],
                        padding=padding)
        return {k: enc[k] for k in INPUTS}

    truth = label_ids(test, labels)

    def score(outputs):
        predictions = outputs["logits"].argmax(-1)
        return {"accuracy": metrics.accuracy(truth, predictions),
                "macro_f1": metrics.macro_f1(truth, predictions)}

    return Spec(BertForSequenceClassification, {"num_labels": len(labels)},
                {**encode(train), "labels": label_ids(train, labels).tolist()}, encode(test),
                score, token_labels=False)


def token_classification(train_file, test_file, recipe, tokenizer, padding):
    from transformers import BertForTokenClassification

    from keras_bert_x import metrics
    from keras_bert_x.data.tasks.conll import read_conll, tag_names

    train, test = read_conll(train_file), read_conll(test_file)
    tags = tag_names(train)
    index = {t: i for i, t in enumerate(tags)}

    def encode(sentences):
        """Inputs, labels at each word's first piece (-100 elsewhere), and [row] -> {position:
        word index}."""
        enc = tokenizer(sentences.words, is_split_into_words=True, truncation=True,
                        max_length=recipe["seq"], padding=padding)
        labels, firsts = [], []
        for row, sentence_tags in enumerate(sentences.tags):
            previous, first, row_labels = None, {}, []
            for position, word in enumerate(enc.word_ids(row)):
                first_piece = word is not None and word != previous
                # .get: a test tag may be missing from (a cut) training split; unused there
                row_labels.append(index.get(sentence_tags[word], -100) if first_piece else -100)
                if first_piece:
                    first[position] = word
                previous = word
            labels.append(row_labels)
            firsts.append(first)
        return {k: enc[k] for k in INPUTS}, labels, firsts

    train_inputs, train_labels, _ = encode(train)
    test_inputs, _, test_firsts = encode(test)

    def score(outputs):
        best = outputs["logits"].argmax(-1)
        predicted = []
        for row, words in enumerate(test.words):
            sentence = ["O"] * len(words)  # words cut off or without pieces: "O"
            for position, word in test_firsts[row].items():
                sentence[word] = tags[best[row][position]]
            predicted.append(sentence)
        return metrics.entity_scores(test.tags, predicted)

    return Spec(BertForTokenClassification, {"num_labels": len(tags)},
                {**train_inputs, "labels": train_labels}, test_inputs, score, token_labels=True)


def squad(train_file, test_file, recipe, tokenizer, padding):
    """HF's run_qa recipe: windows from `return_overflowing_tokens` (stride = overlap), answer
    positions and n-best answers from the offset mapping."""
    import json

    from transformers import BatchEncoding, BertForQuestionAnswering

    from keras_bert_x import metrics

    def load(path):
        with open(path, encoding="utf-8") as f:
            return [(qa["id"], qa["question"], p["context"], qa["answers"])
                    for a in json.load(f)["data"] for p in a["paragraphs"] for qa in p["qas"]]

    def encode(questions):
        """Windows of each question, stepped `doc_stride` context tokens apart as Google's
        run_squad (and ours) step them: HF's `stride` is the overlap, room - doc_stride."""
        parts = collections.defaultdict(list)
        sequence_ids = []
        for q, (_, question, context, _) in enumerate(questions):
            room = recipe["seq"] - 3 - len(tokenizer.tokenize(question.lstrip()))
            enc = tokenizer(question.lstrip(), context, truncation="only_second",
                            max_length=recipe["seq"], stride=max(room - recipe["doc_stride"], 0),
                            return_overflowing_tokens=True, return_offsets_mapping=True,
                            padding=padding)
            for k in (*INPUTS, "offset_mapping"):
                parts[k].extend(enc[k])
            parts["overflow_to_sample_mapping"].extend([q] * len(enc["input_ids"]))
            sequence_ids.extend(enc.sequence_ids(i) for i in range(len(enc["input_ids"])))
        enc = BatchEncoding(dict(parts))
        enc.sequence_ids = sequence_ids.__getitem__
        return enc

    train = load(train_file)
    enc = encode(train)
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        _, _, context, answers = train[enc["overflow_to_sample_mapping"][i]]
        answer = answers[0]
        first, last = answer["answer_start"], answer["answer_start"] + len(answer["text"])
        sequence = enc.sequence_ids(i)
        context_positions = [k for k, s in enumerate(sequence) if s == 1]
        c0, c1 = context_positions[0], context_positions[-1]
        if offsets[c0][0] > first or offsets[c1][1] < last:
            starts.append(0)
            ends.append(0)
            continue
        k = c0
        while k <= c1 and offsets[k][0] <= first:
            k += 1
        starts.append(k - 1)
        k = c1
        while k >= c0 and offsets[k][1] >= last:
            k -= 1
        ends.append(k + 1)

    test = load(test_file)
    test_enc = encode(test)

    def score(outputs):
        best = {}
        for i, offsets in enumerate(test_enc["offset_mapping"]):
            qid, _, context, _ = test[test_enc["overflow_to_sample_mapping"][i]]
            sequence = test_enc.sequence_ids(i)
            s_logits, e_logits = outputs["start_logits"][i], outputs["end_logits"][i]
            for s in np.argsort(-s_logits)[:20]:
                for e in np.argsort(-e_logits)[:20]:
                    if max(s, e) >= len(sequence):  # the -100 padding of a shorter window
                        continue
                    if sequence[s] != 1 or sequence[e] != 1 or e < s or e - s + 1 > 30:
                        continue
                    total = float(s_logits[s] + e_logits[e])
                    if qid not in best or total > best[qid][0]:
                        best[qid] = (total, context[offsets[s][0]:offsets[e][1]])
        predictions = {qid: text for qid, (_, text) in best.items()}
        scores = metrics.squad_scores({q[0]: [a["text"] for a in q[3]] for q in test},
                                      predictions)
        return {"exact_match": scores["exact_match"], "f1": scores["f1"]}

    return Spec(BertForQuestionAnswering, {},
                {**{k: enc[k] for k in INPUTS}, "start_positions": starts, "end_positions": ends},
                {k: test_enc[k] for k in INPUTS}, score, token_labels=False)


VARIANTS = ("hf_trainer", "hf_trainer_grouped", "hf_fixed")


def train_and_evaluate(task, train_file, test_file, recipe, weights, seed=42,
                       variant="hf_trainer"):
    import os

    from transformers import BertTokenizerFast

    tokenizer = BertTokenizerFast(os.path.join(weights, "vocab.txt"), do_lower_case=True)
    fixed = variant == "hf_fixed"
    make = {"mr": classification, "wnut16": token_classification, "squad": squad}[task]
    spec = make(train_file, test_file, recipe, tokenizer, "max_length" if fixed else False)
    model = _seeded(seed, spec.model_class, weights, **spec.model_kwargs)
    run = _fixed_loop if fixed else _trainer
    result = run(model, spec, recipe, seed, tokenizer, grouped=variant == "hf_trainer_grouped")
    return {**result, "train_features": len(spec.train["input_ids"])}
