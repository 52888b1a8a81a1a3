// Package generate decodes continuations of prompts with a model's KV cache (model.Extend):
// greedy decoding, sampling with temperature, top-k and top-p, and beam search with a length
// penalty, several sequences at once.
//
// Batching. A Generator keeps one cache slot per sequence (Beams slots per prompt for beam
// search). Prompts of different lengths are prefilled together as one packed batch, with no
// padding; each step then appends one token to every running sequence, and a slot freed by a
// finished sequence takes the next waiting prompt at the next step (continuous batching).
//
// Strategies (Config):
//   - greedy: the argmax token (lowest id on ties, as torch.argmax);
//   - sample: a draw from softmax(logits/T) truncated by top-k then top-p, exactly as Hugging
//     Face's TemperatureLogitsWarper, TopKLogitsWarper and TopPLogitsWarper (see SampleParams);
//     the paper uses k=50 with p=1 and p=0.7;
//   - beam: Hugging Face's beam search (num_beams B, early_stopping=False, one returned
//     sequence); a finished hypothesis y scores log Q(y|x) / |y|^lp, |y| the generated tokens
//     including EOS (see beam.go). The paper uses B = 2 and 4.
//
// Every sequence stops at EOS (kept as its last id) or after MaxNewTokens.
//
// Log-probability. Every Result carries log Q(y|x) = sum over the generated ids y_t of
// log softmax(logits_t)[y_t] at temperature 1 over the model's whole vocabulary, in float64:
// the sequence's probability under the model itself, whatever temperature or truncation chose
// it (the reverse-KL metric, eq. 9, needs exactly this).
//
// Seeds. A sampled sequence draws from its own generator, NewRand(RowSeed(seed, row id,
// sample)), one Float64 per token, so its random stream does not depend on batching, worker
// count or processing order. The logits themselves can differ in the last bits between batch
// sizes (the matrix kernels may sum in another order for one row than for many), which can
// flip a choice only where two tokens are tied to float32 rounding.
//
// Sampler, Argmax and LogSoftmax work on one logits row with an explicit random source, for
// other packages that draw tokens (cpo-negatives' autoregressive negatives).
package generate
