/**
 * The checks every export variant goes through (used by export-variants.test.ts
 * and export-layouts.test.ts):
 *  1. findAttention finds each self- and cross-attention module once, with the
 *     module path the names or metadata carry, its heads and channels;
 *  2. the export computes what the canonical export (TorchScript, ts-sdpa, same
 *     weights) computes — this validates the fixture itself;
 *  3. the converted export computes what the converted canonical export computes,
 *     no self-attention core is left and every cross-attention core is.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyModel } from '../../src/ir/verify.js';
import type { VariantHarness, VariantRun } from '../fixtures/exports/harness.js';
import type { ExportOptions } from '../fixtures/exports/index.js';
import { relativeError } from '../fixtures/exports/runtime.js';

export interface VariantCase extends ExportOptions {
  /** Attention cores per cross-attention module (2 with an IP-Adapter). */
  coresPerCross?: number;
  /** Largest relative error of the converted model against the converted canonical export (default: as for the export itself, 1e-5 in fp32, 3e-3 in fp16). */
  convertedTolerance?: number;
}

const isCanonical = (c: VariantCase) => c.style === 'ts-sdpa' && !c.staticShapes && !c.lora && (c.names ?? 'diffusers') === 'diffusers';

export function describeVariant(harness: VariantHarness, c: VariantCase): void {
  const dtype = c.dtype ?? 'f32';
  const tolerance = dtype === 'f16' ? 3e-3 : 1e-5;
  const shapes = c.staticShapes === undefined ? '' : c.staticShapes ? ' (static shapes)' : ' (dynamic shapes)';
  const extras = `${c.lora ? ' · LoRA unfused' : ''}${c.names === 'ldm' ? ' · LDM names' : ''}`;
  const label = `${c.layout} · ${c.style}${shapes}${extras} · ${dtype}`;
  describe(label, () => {
    let run: VariantRun;
    let canonical: VariantRun;
    beforeAll(async () => {
      canonical = await harness.canonical(c.layout, dtype);
      run = isCanonical(c) ? canonical : await harness.run(c);
    });

    it('finds each attention module once, with its module path, heads and channels', () => {
      const { found, built } = run;
      expect(found.unmatched.map((u) => `${u.node.name}: ${u.reason}`)).toEqual([]);
      const selfs = found.matches.filter((m) => m.kind === 'self');
      const cross = found.matches.filter((m) => m.kind === 'cross');
      expect(selfs.map((m) => m.blockPath)).toEqual(built.selfBlocks.map((b) => b.path));
      expect(selfs.map((m) => m.modulePath)).toEqual(built.selfBlocks.map((b) => `${b.path}.attn1`));
      expect(selfs.map((m) => m.heads)).toEqual(built.selfBlocks.map((b) => b.heads));
      expect(selfs.map((m) => m.channels)).toEqual(built.selfBlocks.map((b) => b.channels));
      // the region: from what norm1 (plus DiT modulation) produced to what the residual add reads
      const inputOps = built.options.layout === 'dit' ? ['Add'] : ['LayerNormalization', 'SkipLayerNormalization'];
      for (const m of [...selfs, ...cross]) {
        expect(m.kvSource === m.input).toBe(m.kind === 'self');
        expect(m.nodes).toContain(m.output.producer);
        expect(m.nodes).not.toContain(m.input.producer);
        expect(inputOps).toContain(m.input.producer?.opType);
        expect(m.output.users().some((n) => m.nodes.includes(n))).toBe(false);
      }
      expect(cross).toHaveLength(built.crossCount);
      expect(cross.map((m) => m.modulePath)).toEqual(built.selfBlocks.map((b) => `${b.path}.attn2`));
    });

    if (isCanonical(c)) {
      it('changes the outputs (the conversion really replaces the attention)', () => {
        expect(relativeError(run.converted!, run.original!)).toBeGreaterThan(0.05);
      });
    } else {
      it('computes what the canonical export computes (same weights, same maths)', () => {
        if (c.style.startsWith('ms-mha-packed')) {
          // onnxruntime's CPU provider has no kernel for packed QKV; the conversion check below still runs.
          expect(run.originalError).toMatch(/Packed QKV .* not implemented for CPU/);
          return;
        }
        expect(run.originalError).toBeUndefined();
        expect(relativeError(run.original!, canonical.original!)).toBeLessThanOrEqual(tolerance);
      });
    }

    it('converts every self-attention and keeps every cross-attention', () => {
      const { report, built } = run;
      const perCross = c.coresPerCross ?? 1;
      expect(report.layers.map((l) => [l.status, l.binding, l.checkpointBlock])).toEqual(built.selfBlocks.map((b) => ['converted', 'name', b.checkpointPath ?? b.path]));
      expect(report.layers.map((l) => l.kernel)).toEqual(built.selfBlocks.map((b) => b.kernel));
      expect(report.crossAttention).toBe(built.crossCount);
      expect(run.coresBefore).toBe(built.selfBlocks.length + built.crossCount * perCross);
      expect(run.coresAfter).toBe(built.crossCount * perCross);
      expect(run.foundAfter.matches.filter((m) => m.kind === 'self')).toHaveLength(0);
      expect(run.foundAfter.matches.filter((m) => m.kind === 'cross')).toHaveLength(built.crossCount);
      expect(verifyModel(built.model).filter((d) => d.severity === 'error')).toEqual([]);
    });

    if (!isCanonical(c)) {
      it('converts to the model the canonical export converts to', () => {
        if (c.style === 'ms-mha-packed-kv') {
          // cross-attention keeps its packed-KV MultiHeadAttention, which the CPU provider cannot run
          expect(run.convertedError).toMatch(/Packed KV not implemented for CPU/);
          return;
        }
        expect(run.convertedError).toBeUndefined();
        expect(relativeError(run.converted!, canonical.converted!)).toBeLessThanOrEqual(c.convertedTolerance ?? tolerance);
      });
    }
  });
}
