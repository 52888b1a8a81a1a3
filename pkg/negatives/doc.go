// Package negatives makes the synthetic negative continuations of CPO (the paper's section 4.2)
// from example rows, producing candidates rows: candidate 0 is the ground truth (kind "gt"),
// then the negatives in the canonical kind order bn, mn, tn, an, each with its kind.
//
// # Kinds and their parameters
//
// BN, batch negatives: continuations of other rows. The paper takes the other rows of the same
// mini-batch; here the "batch" of row i is a sliding window over the input stream, the rows
// i-W/2 .. i+W/2 other than i itself (Options.Window = W, default 1024; at the start and end of
// the input the window is cut short, so rows there draw from about W/2 others). Eligible are the
// window's rows whose response is non-empty and not identical to row i's response; the BN
// negatives of a row are drawn from them uniformly without replacement (distinct rows). The
// reader keeps at most W+1 rows in memory for this, whatever the input size.
//
// MN, meanfield negatives: choose j = max(1, round(c·E)) of the E eligible response positions
// uniformly without replacement (c = Options.MNFraction, default 0.15: the paper gives no value,
// 15% is BERT's masking rate), and replace each chosen token independently by a sample from the
// model's distribution at that position given the prompt and the ground-truth prefix,
// softmax(logits/τ) (τ = Options.MNTemperature, default 1). The sample may equal the original
// token. Eligible are all response positions except a trailing EOS (kept so the negative is still
// terminated) and, when the prompt is empty, position 0 (which has no context to predict it from).
// One forward pass per row serves all its MN negatives and redraws; rows are packed into
// batches of at most Options.BatchTokens tokens, and the lm head runs on the response positions
// only (the prompt's logits are never computed). (The paper writes π(y_t | y_1..y_t); the prefix
// must exclude y_t, and the prompt x conditions it as everywhere else.)
//
// TN, truncation negatives: with body = the response without its trailing EOS (B tokens), cut
// at L uniform in [0, B-1] and return body[:L] followed by EOS: always a strict prefix of the body
// plus EOS, never the ground truth. Rows with B = 0 get no TN (counted as skipped).
//
// AN, autoregressive negatives: see an.go.
//
// # Identical negatives, K, and determinism
//
// A negative identical to the ground truth is redrawn (a new draw of the same kind) up to
// Options.MaxRedraws times, then dropped; BN never draws one (such rows are not eligible). A row
// may therefore have fewer than 1+Mix.Total() candidates; every shortfall is counted in Stats, and
// Options.StrictK drops such rows instead of writing them.
//
// Every row's randomness comes from its own seed, derived from Options.Seed and the row's
// 0-based position in the input (RowSeed), and recorded in the row's Seed column; each kind
// draws from its own stream of that seed. Batches are formed from the input order alone, so the
// same input and options give the same shard whatever the number of workers.
package negatives
