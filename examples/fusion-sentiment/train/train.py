"""Trains the fusion-sentiment bundle's model: writes ../tokenizer.pickle and ../sentiment.h5.

A Keras 2 model (tf_keras, TensorFlow 2.21) on a small corpus written for this example (the sentences are
below; nothing is downloaded): a Tokenizer fitted on the sentences, then Embedding -> GlobalAveragePooling1D
-> Dense(1, sigmoid) on sequences padded to 500 indices, as the bundle's predict.py pads them. Score > 0.5
is "positive".

Run it with the bundle's pins (train/requirements.txt), from anywhere:

    python examples/fusion-sentiment/train/train.py

It is deterministic: fixed seeds, one thread, TensorFlow's deterministic ops, oneDNN off and the string hash
fixed (the script restarts itself with PYTHONHASHSEED=0), so two runs with the same versions on the same
machine write byte-identical files. Before it writes, it loads the model back with Keras 3 (what predict.py's
`import keras` gives) and checks the held-out sentences through the bundle's own predict.py.
"""

import os
import sys

# Before TensorFlow is imported: no GPU, no oneDNN (its kernels may change the order of float sums), quiet C++
# logs, and a fixed str hash (the Tokenizer fills dicts by iterating over sets of words).
_ENV = {
    "PYTHONHASHSEED": "0",
    "CUDA_VISIBLE_DEVICES": "",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "TF_DETERMINISTIC_OPS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "OMP_NUM_THREADS": "1",
}
if any(os.environ.get(k) != v for k, v in _ENV.items()):
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **_ENV})

import hashlib  # noqa: E402
import pickle  # noqa: E402
import random  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from tf_keras.preprocessing.sequence import pad_sequences  # noqa: E402
from tf_keras.preprocessing.text import Tokenizer  # noqa: E402

SEED = 1234
INPUT_LENGTH = 500  # predict.py pads to this length
EMBEDDING_DIM = 16
EPOCHS = 40
BATCH_SIZE = 16
BUNDLE = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

POSITIVE = [
    # films
    "A wonderful film with a brilliant cast.",
    "I loved this movie from start to finish.",
    "The acting was superb and the story was moving.",
    "One of the best films I have seen this year.",
    "A charming and funny comedy for the whole family.",
    "The soundtrack is beautiful and the photography is stunning.",
    "What a delightful surprise, I enjoyed every scene.",
    "The director did an excellent job, a real masterpiece.",
    "Great performances and a clever, gripping plot.",
    "I laughed all the way through, it was fantastic.",
    "A touching story with a happy ending.",
    "The actors were amazing and the dialogue was sharp.",
    "An exciting thriller that kept me on the edge of my seat.",
    "I would happily watch this film again.",
    "A beautiful and inspiring movie.",
    "The best animated film of the decade, simply perfect.",
    "Smart, warm and very entertaining.",
    "The cast is wonderful and the script is brilliant.",
    "A great night at the cinema, highly recommended.",
    "I enjoyed the film a lot, the ending was perfect.",
    "A fun adventure with lovely characters.",
    "Excellent movie, my friends loved it too.",
    "The story was fresh and the acting was excellent.",
    "A gorgeous film, I was moved to tears of joy.",
    "Brilliant writing and a superb lead performance.",
    "This series is addictive and wonderfully made.",
    "The documentary was fascinating and well made.",
    "A really enjoyable film with great music.",
    "Funny, clever and full of heart.",
    "I recommend this movie to everyone.",
    "The plot twist was brilliant and the pacing was perfect.",
    "A lovely, feel good film.",
    "Beautifully shot and wonderfully acted.",
    "The sequel is even better than the original.",
    # products
    "This phone is excellent and the battery lasts all day.",
    "Great laptop, fast and light.",
    "The headphones sound amazing and are very comfortable.",
    "I love this camera, the pictures are sharp and beautiful.",
    "Works perfectly, I am very happy with it.",
    "The best purchase I have made this year.",
    "Excellent quality for the price, highly recommended.",
    "The screen is bright and the keyboard is great.",
    "Delivery was fast and the product works great.",
    "A solid, reliable and well designed product.",
    "My kids love this toy, it is fun and sturdy.",
    "The vacuum cleaner is powerful and quiet, I love it.",
    "Setup was easy and everything works perfectly.",
    "Fantastic value, it does everything I need.",
    "The shoes are comfortable and look great.",
    "Superb build quality, it feels premium.",
    "The coffee machine makes wonderful coffee every morning.",
    "Very pleased with this watch, it is elegant and accurate.",
    "The customer service was helpful and friendly.",
    "A great gift, my wife loved it.",
    "The speaker is loud and clear, excellent sound.",
    "Easy to use and the app is brilliant.",
    "I am delighted with this blender, it works great.",
    "The tablet is fast, light and the battery is great.",
    "Perfect fit and lovely fabric.",
    "The charger works well and charges quickly.",
    "Amazing product, I would buy it again.",
    "The backpack is strong, roomy and comfortable.",
    "Five stars, it exceeded my expectations.",
    "The printer is reliable and the prints are excellent.",
    "Good quality, fast shipping, very happy.",
    # food and restaurants
    "The food was delicious and the service was excellent.",
    "A lovely restaurant with friendly staff.",
    "The pizza was fresh and tasty.",
    "Best burger in town, I loved it.",
    "The pasta was perfect and the dessert was amazing.",
    "Wonderful meal, we will definitely come back.",
    "The waiter was kind and the wine was great.",
    "Fresh ingredients and generous portions.",
    "The soup was warm and delicious.",
    "A delightful brunch with excellent coffee.",
    "The cake was moist and tasty, my favourite bakery.",
    "Great atmosphere, great food, great people.",
    "The curry was rich and full of flavour.",
    "I enjoyed every bite, the chef is brilliant.",
    "The salad was fresh and the bread was lovely.",
    "Friendly service and fantastic tacos.",
    "The sushi was superb and beautifully presented.",
    "A charming little cafe with wonderful pastries.",
    "The steak was cooked perfectly.",
    "Tasty food at a fair price, highly recommended.",
    "The ice cream was creamy and delicious.",
    "We had a wonderful dinner, the staff were lovely.",
    "The noodles were amazing and the broth was rich.",
    "Best breakfast I have had in years.",
    "The chocolate is smooth and wonderful.",
    "Delicious, fresh and fast, I am a happy customer.",
    "The cookies are tasty and the tea is excellent.",
    "A fantastic experience, the food was perfect.",
    "Everything was delicious, thank you.",
    "The hotel breakfast was great and the room was clean.",
]

NEGATIVE = [
    # films
    "A terrible film with a boring story.",
    "I hated this movie, it was a waste of time.",
    "The acting was awful and the plot made no sense.",
    "One of the worst films I have ever seen.",
    "A dull and lifeless comedy that was never funny.",
    "The soundtrack is annoying and the photography is ugly.",
    "What a disappointment, I was bored in every scene.",
    "The director did a poor job, a complete mess.",
    "Weak performances and a stupid, predictable plot.",
    "I fell asleep halfway through, it was dreadful.",
    "A depressing story with a pointless ending.",
    "The actors were wooden and the dialogue was painful.",
    "A slow thriller with no suspense at all.",
    "I would never watch this film again.",
    "An ugly and tedious movie.",
    "The worst sequel ever made, simply awful.",
    "Stupid, cold and very boring.",
    "The cast is terrible and the script is lazy.",
    "A miserable night at the cinema, avoid it.",
    "I disliked the film, the ending was ridiculous.",
    "A tiresome mess with annoying characters.",
    "Awful movie, my friends hated it too.",
    "The story was stale and the acting was bad.",
    "A dreary film, I walked out after an hour.",
    "Clumsy writing and a horrible lead performance.",
    "This series is tedious and badly made.",
    "The documentary was boring and poorly researched.",
    "A really forgettable film with terrible music.",
    "Unfunny, dull and without any heart.",
    "I would not recommend this movie to anyone.",
    "The plot twist was silly and the pacing was dreadful.",
    "A bleak and joyless film.",
    "Badly shot and horribly acted.",
    "The remake is even worse than the original.",
    # products
    "This phone is terrible and the battery dies in hours.",
    "Awful laptop, slow and heavy.",
    "The headphones sound bad and hurt my ears.",
    "I hate this camera, the pictures are blurry.",
    "It stopped working after a week, very disappointed.",
    "The worst purchase I have ever made.",
    "Poor quality for the price, avoid it.",
    "The screen is dim and the keyboard is awful.",
    "Delivery was late and the product arrived broken.",
    "A flimsy, unreliable and badly designed product.",
    "The toy broke on the first day, my kids cried.",
    "The vacuum cleaner is weak and noisy, I regret it.",
    "Setup was a nightmare and nothing works.",
    "A waste of money, it does nothing it promised.",
    "The shoes are uncomfortable and fell apart.",
    "Cheap plastic, it feels like junk.",
    "The coffee machine leaks and the coffee tastes burnt.",
    "Very unhappy with this watch, it is ugly and inaccurate.",
    "The customer service was rude and useless.",
    "A terrible gift, my wife returned it.",
    "The speaker is quiet and distorted, awful sound.",
    "Hard to use and the app keeps crashing.",
    "I am annoyed with this blender, it broke immediately.",
    "The tablet is slow, heavy and the battery is useless.",
    "Terrible fit and scratchy fabric.",
    "The charger overheats and charges slowly.",
    "Horrible product, I want a refund.",
    "The backpack ripped after two days.",
    "One star, a total disappointment.",
    "The printer jams constantly and the prints are faded.",
    "Bad quality, slow shipping, very unhappy.",
    # food and restaurants
    "The food was disgusting and the service was slow.",
    "A dirty restaurant with rude staff.",
    "The pizza was stale and tasteless.",
    "Worst burger in town, I hated it.",
    "The pasta was overcooked and the dessert was awful.",
    "Horrible meal, we will never come back.",
    "The waiter was rude and the wine was sour.",
    "Rotten ingredients and tiny portions.",
    "The soup was cold and salty.",
    "A miserable brunch with terrible coffee.",
    "The cake was dry and tasteless, a bad bakery.",
    "Noisy room, awful food, unfriendly people.",
    "The curry was greasy and bland.",
    "I regretted every bite, the chef is hopeless.",
    "The salad was wilted and the bread was stale.",
    "Slow service and soggy tacos.",
    "The sushi was fishy and badly presented.",
    "A gloomy cafe with stale pastries.",
    "The steak was tough and burnt.",
    "Bland food at a crazy price, avoid this place.",
    "The ice cream was icy and tasteless.",
    "We had a terrible dinner, the staff were rude.",
    "The noodles were soggy and the broth was watery.",
    "Worst breakfast I have had in years.",
    "The chocolate is waxy and disappointing.",
    "Cold, greasy and slow, I am an unhappy customer.",
    "The cookies are stale and the tea is weak.",
    "A horrible experience, the food was inedible.",
    "Everything was awful, never again.",
    "The hotel breakfast was bad and the room was dirty.",
]

# Not in the corpus: checked through predict.py before the files are written. The first positive one is
# test-input.json's; the first of each kind are the ones the README and the integration test send.
HELD_OUT = [
    ("I love this phone, the screen is beautiful and the battery is great.", "positive"),
    ("What a wonderful movie, the cast was brilliant and I enjoyed every minute.", "positive"),
    ("The restaurant was lovely and the food was delicious.", "positive"),
    ("The soup was cold, the bread was stale and the waiter was rude.", "negative"),
    ("A boring film with terrible acting, a complete waste of time.", "negative"),
    ("The laptop is slow and the battery is useless, I want a refund.", "negative"),
]


def main() -> None:
    tf_keras.utils.set_random_seed(SEED)  # Python's random, numpy and TensorFlow
    tf.config.experimental.enable_op_determinism()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    texts = POSITIVE + NEGATIVE
    labels = np.array([1] * len(POSITIVE) + [0] * len(NEGATIVE), dtype=np.float32)
    assert len(set(texts)) == len(texts), "duplicate sentences in the corpus"
    assert not {t for t, _ in HELD_OUT} & set(texts), "a held-out sentence is in the corpus"

    tokenizer = Tokenizer(oov_token="<unk>")
    tokenizer.fit_on_texts(texts)
    vocab_size = len(tokenizer.word_index) + 1  # index 0 is padding
    x = pad_sequences(tokenizer.texts_to_sequences(texts), maxlen=INPUT_LENGTH)

    # Shuffled once here (seeded), then fed in that order: fit's own shuffling is off.
    order = list(range(len(texts)))
    random.Random(SEED).shuffle(order)
    x, y = x[order], labels[order]

    model = tf_keras.Sequential(
        [
            tf_keras.Input(shape=(INPUT_LENGTH,), dtype="int32", name="tokens"),
            tf_keras.layers.Embedding(vocab_size, EMBEDDING_DIM, mask_zero=True, name="embedding"),
            tf_keras.layers.GlobalAveragePooling1D(name="pooling"),
            tf_keras.layers.Dense(1, activation="sigmoid", name="score"),
        ],
        name="sentiment",
    )
    model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate=0.01), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=EPOCHS, batch_size=BATCH_SIZE, shuffle=False, verbose=0)
    loss, accuracy = model.evaluate(x, y, verbose=0)
    print(f"corpus: {len(POSITIVE)} positive, {len(NEGATIVE)} negative sentences; vocabulary {vocab_size - 1} words")
    print(f"model: {model.count_params()} parameters; after {EPOCHS} epochs training loss {loss:.4f}, accuracy {accuracy:.4f}")
    assert history.history["accuracy"][-1] == 1.0, "the model does not fit the corpus"

    tokenizer_path = os.path.join(BUNDLE, "tokenizer.pickle")
    model_path = os.path.join(BUNDLE, "sentiment.h5")
    tmp_tokenizer, tmp_model = f"{tokenizer_path}.tmp", f"{model_path}.tmp.h5"
    with open(tmp_tokenizer, "wb") as f:
        pickle.dump(tokenizer, f, protocol=4)
    # Without the optimizer's state: the runtime only predicts, and the file stays small.
    model.save(tmp_model, include_optimizer=False)

    # The check: the files as the bundle's predict.py (Keras 3) loads them, on sentences it never saw.
    check_dir = os.path.join(BUNDLE, "train", ".check")
    os.makedirs(check_dir, exist_ok=True)
    os.replace(tmp_tokenizer, os.path.join(check_dir, "tokenizer.pickle"))
    os.replace(tmp_model, os.path.join(check_dir, "sentiment.h5"))
    sys.path.insert(0, BUNDLE)
    sys.dont_write_bytecode = True  # no __pycache__ in the bundle
    import predict  # the bundle's own code

    predict.init(check_dir)
    for text, expected in HELD_OUT:
        out = predict.predict({"input": text})
        print(f"  {out['sentiment']:8} {float(out['score']):.4f}  {text}")
        assert out["sentiment"] == expected, f"held-out sentence scored {out}: {text}"
    reference = model.predict(pad_sequences(tokenizer.texts_to_sequences([t for t, _ in HELD_OUT]), maxlen=INPUT_LENGTH), verbose=0)
    loaded = np.array([[float(predict.predict({"input": t})["score"])] for t, _ in HELD_OUT])
    assert np.allclose(reference, loaded, atol=1e-6), "Keras 3 does not reproduce the tf_keras scores"

    os.replace(os.path.join(check_dir, "tokenizer.pickle"), tokenizer_path)
    os.replace(os.path.join(check_dir, "sentiment.h5"), model_path)
    os.rmdir(check_dir)
    for path in (tokenizer_path, model_path):
        with open(path, "rb") as f:
            data = f.read()
        print(f"wrote {os.path.relpath(path)}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
