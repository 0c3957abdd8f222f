// The iris ensemble of Ray Serve's tutorial, on modelship: asks both members (spec.dependencies `logistic` and
// `svm`, two ModelServings) at once and averages their class probabilities.
// Input: {input: [sepal_length, sepal_width, petal_length, petal_width]} (cm).
// Output: {label, probabilities, logistic: its label, svm: its label}.
const CLASSES = ['setosa', 'versicolor', 'virginica'];
const MEMBERS = ['logistic', 'svm'];

export async function predict(instance, ctx) {
  // OIP v2 to the members: their predict and predict_proba outputs. Both calls are in flight together; each
  // carries this request's id and its remaining time.
  const request = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP64', data: Array.from(instance.input) }] };
  const answers = await Promise.all(MEMBERS.map((m) => ctx.models[m].infer(request)));
  const output = (answer, name) => answer.outputs.find((o) => o.name === name).data;
  const probabilities = CLASSES.map((_, c) => answers.reduce((s, a) => s + output(a, 'predict_proba')[c], 0) / answers.length);
  const best = probabilities.indexOf(Math.max(...probabilities));
  return {
    label: CLASSES[best],
    probabilities,
    ...Object.fromEntries(MEMBERS.map((m, i) => [m, CLASSES[output(answers[i], 'predict')[0]]])),
  };
}
