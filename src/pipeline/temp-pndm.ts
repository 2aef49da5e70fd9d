// TEMPORARY (removed when i18-sched merges): a PNDM (skip_prk_steps) of the shape
// src/pipeline/schedulers/ will export, for the first end-to-end runs.
export interface Scheduler {
  readonly name: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly timesteps: readonly number[];
  readonly initNoiseSigma: number;
  setTimesteps(n: number): void;
  scaleModelInput(sample: Float32Array, t: number): Float32Array;
  step(modelOutput: Float32Array, t: number, sample: Float32Array): Float32Array;
}

export function createScheduler(config: Record<string, unknown>, _name?: string): Scheduler {
  const n = 1000;
  const bs = Math.sqrt(config.beta_start as number);
  const be = Math.sqrt(config.beta_end as number);
  const ac = new Float32Array(n);
  let p = 1;
  for (let i = 0; i < n; i++) {
    const b = Math.fround(Math.fround(bs + ((be - bs) * i) / (n - 1)) ** 2);
    p = Math.fround(p * Math.fround(1 - b));
    ac[i] = p;
  }
  const final = ac[0]!;
  let steps = 0;
  let ets: Float32Array[] = [];
  let counter = 0;
  let cur: Float32Array | null = null;
  const s: Scheduler = {
    name: 'PNDMScheduler',
    options: config,
    timesteps: [],
    initNoiseSigma: 1,
    setTimesteps(k) {
      steps = k;
      const ratio = Math.floor(n / k);
      const ts = Array.from({ length: k }, (_, i) => Math.round(i * ratio) + 1);
      const plms = [...ts.slice(0, -1), ts[ts.length - 2]!, ts[ts.length - 1]!].reverse();
      (s as unknown as { timesteps: number[] }).timesteps = plms;
      ets = [];
      counter = 0;
      cur = null;
    },
    scaleModelInput: (x) => x,
    step(out, t, sample) {
      let prev = t - Math.floor(n / steps);
      let ts = t;
      if (counter !== 1) {
        ets = ets.slice(-3);
        ets.push(out);
      } else {
        prev = t;
        ts = t + Math.floor(n / steps);
      }
      let mo: Float32Array;
      const e = ets;
      const L = e.length;
      const comb = (f: (i: number) => number) => Float32Array.from(out, (_, i) => f(i));
      if (L === 1 && counter === 0) {
        mo = out;
        cur = sample;
      } else if (L === 1 && counter === 1) {
        mo = comb((i) => (out[i]! + e[L - 1]![i]!) / 2);
        sample = cur!;
        cur = null;
      } else if (L === 2) mo = comb((i) => (3 * e[L - 1]![i]! - e[L - 2]![i]!) / 2);
      else if (L === 3) mo = comb((i) => (23 * e[L - 1]![i]! - 16 * e[L - 2]![i]! + 5 * e[L - 3]![i]!) / 12);
      else mo = comb((i) => (55 * e[L - 1]![i]! - 59 * e[L - 2]![i]! + 37 * e[L - 3]![i]! - 9 * e[L - 4]![i]!) / 24);
      const a = ac[ts]!;
      const ap = prev >= 0 ? ac[prev]! : final;
      const sc = Math.sqrt(ap / a);
      const den = a * Math.sqrt(1 - ap) + Math.sqrt(a * (1 - a) * ap);
      counter++;
      const smp = sample;
      return Float32Array.from(smp, (v, i) => sc * v - ((ap - a) * mo[i]!) / den);
    },
  };
  return s;
}
