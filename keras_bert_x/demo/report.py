"""`demo_out/report.md`: every stage's measured numbers, and PNG plots beside it."""

import os
import platform
import time


def _running_mean(values):
    """Single batches are noisy: each point averages the last 4% of the run."""
    window = max(len(values) // 25, 1)
    out = []
    for i in range(len(values)):
        recent = values[max(0, i - window + 1):i + 1]
        out.append(sum(recent) / len(recent))
    return out, window


def _series(ax, steps, values, label):
    """One logged series: each batch faint, their running mean drawn over it."""
    smooth, window = _running_mean(values)
    line, = ax.plot(steps, smooth, label=f"{label} (mean of {window} steps)")
    ax.plot(steps, values, alpha=0.2, color=line.get_color())


def _plots(ctx, folder):
    """Writes the PNGs; returns their names."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a server
    import matplotlib.pyplot as plt

    def save(name, fig):
        fig.tight_layout()
        fig.savefig(os.path.join(folder, name), dpi=100)
        plt.close(fig)
        return name

    names = {}
    curve = ctx.results["pretrain"]["curve"]
    if curve:
        steps = [r["step"] for r in curve]
        fig, (loss, accuracy) = plt.subplots(1, 2, figsize=(10, 3.6))
        for ax, kind in ((loss, "loss"), (accuracy, "accuracy")):
            for head in ("mlm", "nsp"):
                if f"{head}_{kind}" in curve[0]:
                    _series(ax, steps, [r[f"{head}_{kind}"] for r in curve],
                            f"{head.upper()} {kind}")
        loss.set_xlabel("step")
        loss.legend()
        accuracy.set_xlabel("step")
        accuracy.legend()
        fig.suptitle("bert_tiny pretraining on the Brown corpus (training batches)")
        names["pretrain"] = save("pretraining_curves.png", fig)
    finetune = ctx.results["finetune"]
    if finetune["curve"]:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        steps = [r["step"] for r in finetune["curve"]]
        _series(ax, steps, [r["loss"] for r in finetune["curve"]], "training loss")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy")
        ax.legend()
        ax.set_title("MiniLM-L6 fine-tuning on MR sentiment")
        names["finetune"] = save("finetuning_loss.png", fig)
    parity = ctx.results["parity"]
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    matrix = parity["confusion"]
    ax.imshow(matrix, cmap="Blues")
    labels = parity["labels"]
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted (served model)")
    ax.set_ylabel("true")
    top = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center",
                    color="white" if count > top / 2 else "black")
    ax.set_title("MR test split")
    names["confusion"] = save("confusion_matrix.png", fig)
    return names


def _fmt(value, digits=3):
    return "" if value is None else f"{value:.{digits}f}"


REPORT = "report.md"


def write_report(ctx, folder):
    """Writes the plots and report.md (linking them) into `folder`; returns the report's
    path."""
    import tensorflow as tf

    import keras_bert_x

    r = ctx.results
    plots = _plots(ctx, folder)
    vocab, data, pre, fine, exp, par = (r[k] for k in ("vocab", "data", "pretrain", "finetune",
                                                      "export", "parity"))
    lines = ["# keras_bert_x demo: raw text to a served model", "",
             f"{time.strftime('%Y-%m-%d %H:%M')} · {platform.machine()}, {os.cpu_count()} CPU "
             f"cores · TensorFlow {tf.__version__} · keras_bert_x {keras_bert_x.__version__} · "
             "written by `make demo` (`python -m keras_bert_x.demo`)", "",
             "## Stages", "", "| stage | seconds |", "|---|---|"]
    total = 0.0
    for name in ("vocab", "data", "pretrain", "finetune", "export", "parity"):
        total += r[name]["seconds"]
        lines.append(f"| {name} | {r[name]['seconds']:.0f} |")
    lines += [f"| **total** | **{total:.0f}** ({total / 60:.1f} min) |", "",
              "Seconds spent in each stage, over all its attempts when it was interrupted and "
              "resumed; a stage kept from an earlier run shows the time it took then.", "",
              "## 1. WordPiece vocabulary", "",
              f"Learned with tf-text's learner on {vocab['documents']} Brown documents "
              f"({vocab['sentences']:,} sentences, {vocab['words']:,} words): "
              f"{vocab['vocab_size']:,} tokens, "
              f"{vocab['pieces_per_whitespace_word']} pieces per whitespace-separated word "
              "(punctuation attached) on the first 2,000 sentences.", "",
              f"> {vocab['example']}  →  `{' '.join(vocab['example_pieces'])}`", "",
              "## 2. Pretraining data", "",
              "| split | documents | instances | masked tokens | random next sentences |",
              "|---|---|---|---|---|"]
    for part in ("train", "eval"):
        d = data[part]
        lines.append(f"| {part} | {d['documents']} | {d['instances']:,} | {d['masked']:,} | "
                     f"{d['random_next']:,} |")
    lines += ["", "The evaluation documents are the corpus's last "
              f"{data['eval']['documents']} (held out from pretraining; the vocabulary saw "
              "them).", "", "## 3. Pretraining bert_tiny", ""]
    last = pre["curve"][-1] if pre["curve"] else {}
    first = pre["curve"][0] if pre["curve"] else {}
    lines += ["| measured on | step | MLM loss | MLM accuracy | NSP accuracy |",
              "|---|---|---|---|---|",
              f"| first logged batch | {first.get('step', '')} | {_fmt(first.get('mlm_loss'))} | "
              f"{_fmt(first.get('mlm_accuracy'))} | {_fmt(first.get('nsp_accuracy'))} |",
              f"| last logged batch | {last.get('step', '')} | {_fmt(last.get('mlm_loss'))} | "
              f"{_fmt(last.get('mlm_accuracy'))} | {_fmt(last.get('nsp_accuracy'))} |"]
    if pre["eval"]:
        e = pre["eval"]
        lines.append(f"| held-out documents | {e.get('step', '')} | "
                     f"{_fmt(e.get('mlm_loss', e.get('loss')))} | "
                     f"{_fmt(e.get('mlm_accuracy'))} | {_fmt(e.get('nsp_accuracy'))} |")
    if "pretrain" in plots:
        lines += ["", f"![pretraining curves]({plots['pretrain']})"]
    ex = fine["examples"]
    lines += ["", "## 4. Fine-tuning MiniLM-L6 on MR sentiment", "",
              f"The packaged all-MiniLM-L6-v2 (a Hugging Face BertModel) converted to ours"
              + (f" in {fine['convert_seconds']:.1f} s" if fine["convert_seconds"] else "")
              + f", then fine-tuned on {ex['train']:,} MR sentences "
              f"(dev {ex['dev']:,}, test {ex['test']:,}).", "",
              "| evaluation (dev) | step | loss | accuracy |", "|---|---|---|---|"]
    for e in fine["evaluations"]:
        lines.append(f"| epoch {e['epoch']:g} | {e['step']} | {_fmt(e['loss'])} | "
                     f"{100 * e['accuracy']:.2f}% |")
    if "finetune" in plots:
        lines += ["", f"![fine-tuning loss]({plots['finetune']})"]
    lines += ["", "## 5. Export", "", "| file | seconds to write |", "|---|---|"]
    for name, seconds in exp["export_seconds"].items():
        lines.append(f"| {name} | {seconds} |")
    lines += ["", "## 6. Parity on the MR test split", "",
              f"{par['test_examples']:,} test sentences at {ctx.options.max_seq_length} tokens. "
              "The SavedModel runs in a fresh process that imports only TensorFlow and "
              "tensorflow_text (as TF Serving loads it); latency is the median of one sentence "
              "at a time.", "", par["table"], "",
              "The SavedModel as TF Serving runs it: raw text into `serving_default` (the "
              "tokenizer in the graph), in a fresh process:", "",
              "| form | agreement with Keras | accuracy |", "|---|---|---|",
              f"| {par['raw_text']['form']} | {100 * par['raw_text']['agreement']:.2f}% | "
              f"{100 * par['raw_text']['accuracy']:.2f}% |", "",
              "Its answers on sentences that are not in MR:", "",
              "| sentence | label | probability |", "|---|---|---|"]
    for e in par["examples"]:
        lines.append(f"| {e['text']} | {e['label']} | {e['probability']:.3f} |")
    lines += ["", f"![confusion matrix]({plots['confusion']})", ""]
    path = os.path.join(folder, REPORT)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


def publish(ctx):
    """`output_dir/report.md`: the report stage's, its plots linked from there. Written on
    every run, so a kept report stage still leaves it in place."""
    import re

    with open(ctx.path("report", REPORT), encoding="utf-8") as f:
        text = re.sub(r"\]\(([\w.]+\.png)\)", r"](report/\1)", f.read())
    path = os.path.join(ctx.output_dir, REPORT)
    with open(path + ".partial", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".partial", path)
    return path
