# A Fusion-style plugin that needs a package outside the runtime's base stack: tabulate, pinned in
# requirements.txt beside this file and installed when the bundle is loaded.
from tabulate import tabulate


def init(bundle_path: str):
    print("Initializing the model!")


def predict(model_input: dict) -> dict:
    return {"table": tabulate([[k, v] for k, v in sorted(model_input.items())])}
