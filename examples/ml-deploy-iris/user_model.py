# An ml-deploy-style model: a module user_model.py with a class UserModel whose load() reads the trained
# model, predict(X, names) answers a request, feedback(...) takes the true labels of earlier predictions and
# reports running metrics, and endpoints(app) adds routes of its own.
# The model is a GaussianNB trained by examples/train/train_iris.py (class indices 0..2:
# setosa, versicolor, virginica).
import os

import joblib
import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from ml_deploy.rest.utils import create_response


class UserModel(object):

    def __init__(self):
        self.model = None
        self.y_true = []
        self.y_predicted = []

    def load(self):
        self.model = joblib.load(os.path.join(os.path.dirname(__file__), 'model.joblib'))

    def predict(self, X, names):
        predicted = self.model.predict(np.atleast_2d(np.asarray(X, dtype=float))).tolist()
        return create_response(input=X, target={'y_predicted': predicted})

    def feedback(self, input_data, y_true, y_predicted):
        self.y_true.extend(y_true)
        self.y_predicted.extend(y_predicted)
        acc = float(accuracy_score(self.y_true, self.y_predicted))
        f1 = float(f1_score(self.y_true, self.y_predicted, average='macro'))
        return create_response(
            input=input_data,
            target={'y_true': y_true, 'y_predicted': y_predicted},
            list_metrics=[
                {'name': 'Accuracy', 'type': 'GAUGE', 'value': acc},
                {'name': 'F1', 'type': 'GAUGE', 'value': f1},
            ],
            topics=['iris-feedback-events'],
        )

    def endpoints(self, app):
        @app.route('/stats', methods=['GET'])
        def stats():
            return {"feedback_count": len(self.y_true)}
