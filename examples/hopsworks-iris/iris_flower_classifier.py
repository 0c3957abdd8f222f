# A Hopsworks-style Python model: a script (any file name) with a class Predict, constructed once with the
# bundle directory as the working directory, whose methods predict/classify/regress each take the request's
# instances (a list of rows of 4 iris measurements in cm) and return a JSON-serializable list.
# The model is a KNeighborsClassifier trained by examples/train/train_iris.py (class indices 0..2:
# setosa, versicolor, virginica).
import joblib


class Predict(object):

    def __init__(self):
        """Initializes the serving state, reads a trained model from the bundle directory"""
        self.model = joblib.load("./iris_knn.pkl")

    def predict(self, inputs):
        """Serves a prediction request using a trained model: the class index of each row"""
        return self.model.predict(inputs).tolist()

    def classify(self, inputs):
        """Serves a classification request using a trained model: the class probabilities of each row"""
        return self.model.predict_proba(inputs).tolist()

    def regress(self, inputs):
        """Serves a regression request using a trained model: the class index of each row, as a float"""
        return [float(c) for c in self.model.predict(inputs)]
