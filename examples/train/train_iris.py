"""Trains the scikit-learn models of the Python example bundles on the iris data that scikit-learn ships.

Deterministic: the data set is sklearn.datasets.load_iris() (no download), every estimator is fitted on all
150 rows, and none of them draws random numbers (random_state is fixed where the estimator takes one).
Run with a Python that has the runtime's base stack (runtime/engines/python/base-stack.lock), so the pickles
match the scikit-learn, joblib and numpy versions that load them:

    python examples/train/train_iris.py

Writes:
    examples/hopsworks-iris/iris_knn.pkl   KNeighborsClassifier()
    examples/ml-deploy-iris/model.joblib   GaussianNB()
    examples/iris-sklearn/model.joblib     LogisticRegression(max_iter=1000, random_state=0)
    examples/ensemble/logistic/model.joblib   LogisticRegression(max_iter=1000, random_state=0) (Ray Serve's ensemble)
    examples/ensemble/svm/model.joblib        SVC(probability=True, random_state=0)
    examples/ray-sklearn/logistic/iris_logistic_regression.pkl   LogisticRegression(max_iter=1000, random_state=0)
    examples/ray-sklearn/svm/iris_svm_classifier.pkl             SVC(random_state=0)
    examples/ray-sklearn/{logistic,svm}/iris_labels.json          the class names, index = class

The Ray Serve tutorial's SKLearnModel reads its model with pickle.load and its labels with json.load, so those
are written with pickle.dump and json.dump, as the tutorial saves them.
"""
import json
import os
import pickle

import joblib
import numpy as np
import sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.svm import SVC

EXAMPLES = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    iris = load_iris()
    X = np.ascontiguousarray(iris.data, dtype=np.float64)
    y = np.ascontiguousarray(iris.target, dtype=np.int64)  # class indices 0..2: setosa, versicolor, virginica
    print(f"scikit-learn {sklearn.__version__}, joblib {joblib.__version__}, numpy {np.__version__}")
    print(f"iris: {X.shape[0]} rows, {X.shape[1]} features, classes {[str(n) for n in iris.target_names]}")

    models = [
        ("hopsworks-iris/iris_knn.pkl", KNeighborsClassifier()),
        ("ml-deploy-iris/model.joblib", GaussianNB()),
        ("iris-sklearn/model.joblib", LogisticRegression(max_iter=1000, random_state=0)),
        ("ensemble/logistic/model.joblib", LogisticRegression(max_iter=1000, random_state=0)),
        ("ensemble/svm/model.joblib", SVC(probability=True, random_state=0)),
    ]
    for rel, model in models:
        model.fit(X, y)
        accuracy = model.score(X, y)
        path = os.path.join(EXAMPLES, rel)
        joblib.dump(model, path)
        print(f"{rel}: {type(model).__name__} training accuracy {accuracy:.4f} ({os.path.getsize(path)} bytes)")

    ray_models = [
        ("ray-sklearn/logistic", "iris_logistic_regression.pkl", LogisticRegression(max_iter=1000, random_state=0)),
        ("ray-sklearn/svm", "iris_svm_classifier.pkl", SVC(random_state=0)),
    ]
    for folder, file, model in ray_models:
        model.fit(X, y)
        path = os.path.join(EXAMPLES, folder, file)
        with open(path, "wb") as f:
            pickle.dump(model, f)
        with open(os.path.join(EXAMPLES, folder, "iris_labels.json"), "w") as f:
            json.dump([str(n) for n in iris.target_names], f)
            f.write("\n")  # as the repository's formatter keeps JSON files
        print(f"{folder}/{file}: {type(model).__name__} training accuracy {model.score(X, y):.4f} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
    main()
