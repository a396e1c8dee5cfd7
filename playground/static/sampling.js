// The sampler's formula, as in model/sampling.py (next_token_probs and entropy_bits), tested equal to it.
// The page applies it to the logits each keystroke brings (POST /api/page sends logits, not probabilities), so
// the temperature slider, top-k and top-p re-shape the bars without asking the server.

// logits (V numbers) → probabilities at temperature τ, keeping only the top-k tokens and then the smallest set
// holding probability top-p. τ = 0 puts everything on the argmax (the first one on a tie, as torch.argmax).
export function nextTokenProbs(logits, temperature, topK = null, topP = null) {
  const V = logits.length;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    return logits.map((_, i) => (i === best ? 1 : 0));
  }
  const max = logits.reduce((a, b) => (b > a ? b : a), -Infinity);
  let z = logits.map((l) => (l - max) / temperature);      // shifted by the largest: finite at any τ > 0
  if (topK !== null && topK < V) {
    const kth = [...z].sort((a, b) => b - a)[topK - 1];
    z = z.map((v) => (v < kth ? -Infinity : v));
  }
  let probs = z.map((v) => Math.exp(v));                   // p_i = exp(z_i/τ) / Σ_j exp(z_j/τ)
  let total = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / total);
  if (topP !== null && topP < 1) {
    const order = probs.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
    let before = 0;                                        // the mass of the likelier tokens
    const kept = new Array(V).fill(0);
    for (const [p, i] of order) {
      if (before < topP) kept[i] = p;                      // the top token always stays
      before += p;
    }
    total = kept.reduce((a, b) => a + b, 0);
    probs = kept.map((p) => p / total);
  }
  return probs;
}

// H(p) = −Σ p log₂ p, in bits.
export function entropyBits(probs) {
  return -probs.reduce((h, p) => (p > 0 ? h + p * Math.log2(p) : h), 0);
}
