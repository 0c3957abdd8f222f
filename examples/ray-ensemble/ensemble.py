# Ray Serve's scikit-learn tutorial, Part 3: its ensemble function, as the tutorial writes it. modelship serves it
# unchanged: @serve.route("/ensemble") makes it the deployment (its route is /v2/models/ray-ensemble/custom/ensemble,
# beside the usual inference endpoints), and serve.get_handle(name) calls the ModelServing's dependency `name`
# (spec.dependencies: logistic and svm), both at once; ray.get waits for their answers.
import ray
from ray import serve


@serve.route("/ensemble")
def ensemble(flask_request):
    payload = flask_request.json

    # Both requests are fired at the same time
    logistic_out_object_id = serve.get_handle("logistic").remote(payload=payload)
    svm_out_object_id = serve.get_handle("svm").remote(payload=payload)

    # We retrieve from both models together
    logistic_out, svm_out = ray.get([logistic_out_object_id, svm_out_object_id])

    # We will return both output
    return {"logistic": logistic_out, "svm": svm_out}
