# The overload benchmark's Python model (bench/overload.ts): every prediction holds its worker for 20 ms
# without using the CPU, so one worker's capacity is about 50 requests/s whatever else the machine does.
import time


def init(bundle_path: str):
    pass


def predict(model_input: dict) -> dict:
    time.sleep(0.02)
    return {"y": 1}
