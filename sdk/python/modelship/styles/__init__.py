"""One module per bundle style, as MLServer keeps one runtime per module: ``fusion`` (predict.py), ``hopsworks``
(class Predict), ``ml_deploy`` (class UserModel), ``estimator`` (a pickled scikit-learn model, no code) and
``ray`` (a Ray Serve deployment class or function). ``modelship.loader`` decides which one a bundle is."""
