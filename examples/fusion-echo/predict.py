# The Lucidworks Fusion seed's echo plugin: the Fusion Python model contract's smallest example.
# Fusion calls init(bundle_path) once with the unzipped bundle's directory, then predict(model_input)
# for each request with the request's JSON object.


def init(bundle_path: str):
    print("Initializing the model!")


def predict(model_input: dict) -> dict:
    if "input" not in model_input:
        raise ValueError("Input must contain the key 'input'")
    return {"output": model_input["input"]}
