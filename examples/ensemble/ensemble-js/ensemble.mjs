// The iris ensemble of Ray Serve's tutorial, on modelship: asks both members (spec.dependencies `logistic` and
// `svm`, two ModelServings) at once and averages their class probabilities.
// Input: {input: [sepal_length, sepal_width, petal_length, petal_width]} (cm).
// Output: {label, probabilities, members: {logistic: label, svm: label}}.
const CLASSES = ['setosa', 'versicolor', 'virginica'];

export async function predict(instance, ctx) {
  const names = ['logistic', 'svm'];
  // Both calls in flight together; each carries this request's id and its remaining time.
  const answers = await Promise.all(names.map((n) => ctx.models[n].predict({ input: instance.input })));
  const probabilities = CLASSES.map((_, c) => answers.reduce((s, a) => s + a.predict_proba[c], 0) / answers.length);
  const best = probabilities.indexOf(Math.max(...probabilities));
  return {
    label: CLASSES[best],
    probabilities,
    members: Object.fromEntries(names.map((n, i) => [n, CLASSES[answers[i].predict]])),
  };
}
