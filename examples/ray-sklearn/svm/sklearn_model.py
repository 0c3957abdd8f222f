# Ray Serve's scikit-learn tutorial, Part 3: its deployment class, as the tutorial writes it. modelship serves it
# unchanged: the constructor's arguments are the `parameters` of modelship.yaml (paths relative to the bundle),
# `from ray import serve` is modelship's compatibility module when Ray is not installed, and serve.context.web is
# True there (every call arrives as a request, whose json is the instance).
import json
import pickle

from ray import serve


class SKLearnModel:
    def __init__(self, model_path, label_path="/tmp/iris_labels.json"):
        with open(model_path, "rb") as f:
            self.model = pickle.load(f)
        with open(label_path) as f:
            self.label_list = json.load(f)

    def __call__(self, flask_request, *, payload=None):
        if serve.context.web:
            payload = flask_request.json
        else:
            payload = payload

        input_vector = [
            payload["sepal length"],
            payload["sepal width"],
            payload["petal length"],
            payload["petal width"],
        ]
        prediction = self.model.predict([input_vector])[0]
        human_name = self.label_list[prediction]
        return human_name
