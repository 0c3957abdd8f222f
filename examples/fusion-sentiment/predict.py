import os
import pickle
from keras.models import load_model
from keras import preprocessing
import keras

INPUT_LENGTH = 500

def init(bundle_path: str):
    """
    One-time initialization here.  For example, loading a serialized model from disk.
    Any objects created here will need to be made module global in order for it to be
    accessible by predict(), i.e. global my_keras_model
    
    :param bundle_path: Path to unzipped bundle, used to construct file path to bundle 
    contents, i.e. os.path.join(bundle_path, "model.pkl")
    """
    global tokenizer
    keras.backend.clear_session()
    with open(os.path.join(bundle_path, 'tokenizer.pickle'), 'rb') as f:
        tokenizer = pickle.load(f)
        global model
        model = load_model(os.path.join(bundle_path, 'sentiment.h5'))
    
def predict(model_input: dict) -> dict: 
    """
    Generate prediction.
    
    Return value is a dict where keys must be `str`, and values must be one of the following types:
      - `numbers.Number` (`float`, `int`, etc.)
      - `str`
      - `list` or `ndarray` of `str`
      - `list` or `ndarray` of `numbers.Number`
    
    :param model_input: a dict containing model input
    :return: model output dict. 
    """
    if 'input' not in model_input:
        raise ValueError("Required field 'input' not defined.")

    samples = [ model_input['input'] ]
    idx_sequence = tokenizer.texts_to_sequences(samples)
    padded_idx_sequence = preprocessing.sequence.pad_sequences(idx_sequence, maxlen=INPUT_LENGTH)

    y = model.predict(padded_idx_sequence)
    label = "positive" if y[0][0] > 0.5 else "negative"

    return {
        "sentiment": label,
        "score": y[0][0]
    }
