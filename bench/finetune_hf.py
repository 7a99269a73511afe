"""The reference side of bench/finetune_real.py: the same recipe in Hugging Face transformers
on PyTorch (a plain loop: `accelerate`, which HF's Trainer needs, is not in this stack)."""

import collections
import math

import numpy as np


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


def _train(model, inputs, recipe, evaluate, seed):
    """Epochs of shuffled batches (the last one partial); `evaluate()` after each epoch."""
    import torch

    n = len(next(iter(inputs.values())))
    per_epoch = math.ceil(n / recipe["batch"])
    optimizer, schedule = _optimizer(model, recipe, per_epoch * recipe["epochs"])
    generator = torch.Generator().manual_seed(seed)
    history = []
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
        model.eval()
        history.append({"epoch": epoch + 1, **evaluate()})
    return {"epochs": history, "final": history[-1]}


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


def classification(train_file, test_file, recipe, weights, tokenizer, seed):
    import torch
    from transformers import BertForSequenceClassification

    from keras_bert_x import metrics
    from keras_bert_x.data.tasks.classification import label_ids, label_names, read_classification

    train = read_classification(train_file, "sentence", "label")
    test = read_classification(test_file, "sentence", "label")
    labels = label_names(train)

    def encode(examples):
        enc = tokenizer(examples.texts, truncation=True, max_length=recipe["seq"],
                        padding="max_length", return_tensors="pt")
        return {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}

    model = _seeded(seed, BertForSequenceClassification, weights, num_labels=len(labels))
    train_inputs = {**encode(train), "labels": torch.tensor(label_ids(train, labels)).long()}
    test_inputs, test_labels = encode(test), label_ids(test, labels)

    def evaluate():
        predictions = _predict(model, test_inputs)["logits"].argmax(-1)
        return {"accuracy": metrics.accuracy(test_labels, predictions),
                "macro_f1": metrics.macro_f1(test_labels, predictions)}

    return _train(model, train_inputs, recipe, evaluate, seed)


def token_classification(train_file, test_file, recipe, weights, tokenizer, seed):
    import torch
    from transformers import BertForTokenClassification

    from keras_bert_x import metrics
    from keras_bert_x.data.tasks.conll import read_conll, tag_names

    train, test = read_conll(train_file), read_conll(test_file)
    tags = tag_names(train)
    index = {t: i for i, t in enumerate(tags)}

    def encode(sentences):
        """Inputs, labels at each word's first piece, and [row] -> {position: word index}."""
        enc = tokenizer(sentences.words, is_split_into_words=True, truncation=True,
                        max_length=recipe["seq"], padding="max_length", return_tensors="pt")
        labels = np.full(enc["input_ids"].shape, -100)
        firsts = []
        for row, sentence_tags in enumerate(sentences.tags):
            previous, first = None, {}
            for position, word in enumerate(enc.word_ids(row)):
                if word is not None and word != previous:
                    labels[row, position] = index[sentence_tags[word]]
                    first[position] = word
                previous = word
            firsts.append(first)
        inputs = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
        return inputs, labels, firsts

    model = _seeded(seed, BertForTokenClassification, weights, num_labels=len(tags))
    train_inputs, train_labels, _ = encode(train)
    train_inputs["labels"] = torch.tensor(train_labels).long()
    test_inputs, _, test_firsts = encode(test)

    def evaluate():
        best = _predict(model, test_inputs)["logits"].argmax(-1)
        predicted = []
        for row, words in enumerate(test.words):
            sentence = ["O"] * len(words)  # words cut off or without pieces: "O"
            for position, word in test_firsts[row].items():
                sentence[word] = tags[best[row][position]]
            predicted.append(sentence)
        return metrics.entity_scores(test.tags, predicted)

    return _train(model, {**train_inputs}, recipe, evaluate, seed)


def squad(train_file, test_file, recipe, weights, tokenizer, seed):
    """HF's run_qa recipe: windows from `return_overflowing_tokens` (stride = overlap), answer
    positions and n-best answers from the offset mapping."""
    import json

    import torch
    from transformers import BertForQuestionAnswering

    from keras_bert_x import metrics

    def load(path):
        with open(path, encoding="utf-8") as f:
            return [(qa["id"], qa["question"], p["context"], qa["answers"])
                    for a in json.load(f)["data"] for p in a["paragraphs"] for qa in p["qas"]]

    def encode(questions):
        """Windows of each question, stepped `doc_stride` context tokens apart as Google's
        run_squad (and ours) step them: HF's `stride` is the overlap, room - doc_stride."""
        from transformers import BatchEncoding

        parts = collections.defaultdict(list)
        sequence_ids = []
        for q, (_, question, context, _) in enumerate(questions):
            room = recipe["seq"] - 3 - len(tokenizer.tokenize(question.lstrip()))
            enc = tokenizer(question.lstrip(), context, truncation="only_second",
                            max_length=recipe["seq"], stride=max(room - recipe["doc_stride"], 0),
                            return_overflowing_tokens=True, return_offsets_mapping=True,
                            padding="max_length")
            for k in ("input_ids", "attention_mask", "token_type_ids", "offset_mapping"):
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
    model = _seeded(seed, BertForQuestionAnswering, weights)
    train_inputs = {k: torch.tensor(enc[k]) for k in ("input_ids", "attention_mask",
                                                      "token_type_ids")}
    train_inputs["start_positions"] = torch.tensor(starts)
    train_inputs["end_positions"] = torch.tensor(ends)

    test = load(test_file)
    test_enc = encode(test)
    test_inputs = {k: torch.tensor(test_enc[k]) for k in ("input_ids", "attention_mask",
                                                          "token_type_ids")}

    def evaluate():
        out = _predict(model, test_inputs)
        best = {}
        for i, offsets in enumerate(test_enc["offset_mapping"]):
            qid, _, context, _ = test[test_enc["overflow_to_sample_mapping"][i]]
            sequence = test_enc.sequence_ids(i)
            s_logits, e_logits = out["start_logits"][i], out["end_logits"][i]
            for s in np.argsort(-s_logits)[:20]:
                for e in np.argsort(-e_logits)[:20]:
                    if sequence[s] != 1 or sequence[e] != 1 or e < s or e - s + 1 > 30:
                        continue
                    score = float(s_logits[s] + e_logits[e])
                    if qid not in best or score > best[qid][0]:
                        best[qid] = (score, context[offsets[s][0]:offsets[e][1]])
        predictions = {qid: text for qid, (_, text) in best.items()}
        scores = metrics.squad_scores({q[0]: [a["text"] for a in q[3]] for q in test},
                                      predictions)
        return {"exact_match": scores["exact_match"], "f1": scores["f1"]}

    return _train(model, train_inputs, recipe, evaluate, seed)


def train_and_evaluate(task, train_file, test_file, recipe, weights, seed=42):
    import os

    from transformers import BertTokenizerFast

    tokenizer = BertTokenizerFast(os.path.join(weights, "vocab.txt"), do_lower_case=True)
    run = {"mr": classification, "wnut16": token_classification, "squad": squad}[task]
    return run(train_file, test_file, recipe, weights, tokenizer, seed)
