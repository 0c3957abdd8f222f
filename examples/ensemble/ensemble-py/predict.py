"""The iris ensemble of Ray Serve's tutorial, as a Fusion-style predict.py: both members (spec.dependencies
``logistic`` and ``svm``) are asked at once from a thread pool, and their class probabilities averaged."""
from concurrent.futures import ThreadPoolExecutor

from modelship import models

CLASSES = ["setosa", "versicolor", "virginica"]
MEMBERS = ["logistic", "svm"]
pool = None


def init(bundle_path):
    global pool
    pool = ThreadPoolExecutor(len(MEMBERS))


def predict(model_input):
    answers = list(pool.map(lambda name: models[name].predict({"input": model_input["input"]}), MEMBERS))
    probabilities = [sum(a["predict_proba"][c] for a in answers) / len(answers) for c in range(len(CLASSES))]
    best = probabilities.index(max(probabilities))
    return {
        "label": CLASSES[best],
        "probabilities": probabilities,
        "members": {name: CLASSES[a["predict"]] for name, a in zip(MEMBERS, answers)},
    }
