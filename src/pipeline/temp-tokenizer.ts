// TEMPORARY (removed when i18-sched merges): a minimal CLIP BPE for the first end-to-end runs.
import type { PromptTokenizer } from './prompt-encoding.js';

function bytesToUnicode(): Map<number, string> {
  const bs: number[] = [];
  for (let i = 33; i <= 126; i++) bs.push(i);
  for (let i = 161; i <= 172; i++) bs.push(i);
  for (let i = 174; i <= 255; i++) bs.push(i);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  return new Map(bs.map((b, i) => [b, String.fromCodePoint(cs[i]!)]));
}

export function tempTokenizer(vocab: Record<string, number>, merges: string[], padToken: string, maxLength = 77): PromptTokenizer {
  const ranks = new Map(merges.map((m, i) => [m, i]));
  const byteMap = bytesToUnicode();
  const pat = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/gu;
  const bpe = (token: string): string[] => {
    let word = [...token];
    word[word.length - 1] += '</w>';
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) return word;
      const a = word[best]!;
      const b = word[best + 1]!;
      const next: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i < word.length - 1 && word[i] === a && word[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(word[i]!);
      }
      word = next;
    }
  };
  const bos = vocab['<|startoftext|>']!;
  const eos = vocab['<|endoftext|>']!;
  const pad = vocab[padToken]!;
  return {
    encode(text) {
      const clean = text.normalize('NFC').replace(/\s+/g, ' ').trim().toLowerCase();
      const ids: number[] = [];
      for (const m of clean.matchAll(pat)) {
        const mapped = [...new TextEncoder().encode(m[0])].map((b) => byteMap.get(b)!).join('');
        for (const piece of bpe(mapped)) ids.push(vocab[piece] ?? eos);
      }
      const truncated = ids.length > maxLength - 2;
      const body = ids.slice(0, maxLength - 2);
      const out = [bos, ...body, eos];
      while (out.length < maxLength) out.push(pad);
      return { ids: out, truncated };
    },
  };
}
