"""The iris ensemble of Ray Serve's tutorial, as a Fusion-style predict.py: both members (spec.dependencies
``logistic`` and ``svm``) are asked at once from a thread pool (OIP v2, for their predict and predict_proba
outputs), and their class probabilities averaged."""
from concurrent.futures import ThreadPoolExecutor

from modelship import models

CLASSES = ["setosa", "versicolor", "virginica"]
MEMBERS = ["logistic", "svm"]
pool = None


def init(bundle_path):
    global pool
    pool = ThreadPoolExecutor(len(MEMBERS))


def _output(answer, name):
    return next(o["data"] for o in answer["outputs"] if o["name"] == name)


def predict(model_input):
    request = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": list(model_input["input"])}]}
    answers = list(pool.map(lambda name: models[name].infer(request), MEMBERS))
    probabilities = [sum(_output(a, "predict_proba")[c] for a in answers) / len(answers) for c in range(len(CLASSES))]
    best = probabilities.index(max(probabilities))
    out = {"label": CLASSES[best], "probabilities": probabilities}
    for name, a in zip(MEMBERS, answers):
        out[name] = CLASSES[int(_output(a, "predict")[0])]
    return out
