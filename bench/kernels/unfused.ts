/**
 * Unfused WGSL baseline of the pyramid conv: the way a framework runs it, one
 * dispatch per op (adaptive pool, depthwise conv, gate, bilinear resize into the
 * concatenated output), every intermediate — full-resolution ones included — in a
 * storage buffer. One invocation per output element.
 */
/// <reference types="@webgpu/types" />
import type { PyramidConvParams } from '../../src/reference/pyramid-conv.js';

const WG = 64;

const header = (fields: string[]) => `
struct P { ${fields.map((f) => `${f}: u32`).join(', ')} }
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: P;
@group(0) @binding(3) var<storage, read> w: array<f32>;
fn index(id: vec3<u32>, n: vec3<u32>) -> u32 { return id.x + id.y * n.x * ${WG}u; }
`;

const SHADERS = {
  pool: `${header(['total', 'h', 'w', 'ho', 'wo', 'c'])}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let i = index(id, n);
  if (i >= p.total) { return; }
  let c = i % p.c; let q = (i / p.c) % p.wo; let r = (i / (p.c * p.wo)) % p.ho; let b = i / (p.c * p.wo * p.ho);
  let r0 = (r * p.h) / p.ho; let r1 = ((r + 1u) * p.h + p.ho - 1u) / p.ho;
  let q0 = (q * p.w) / p.wo; let q1 = ((q + 1u) * p.w + p.wo - 1u) / p.wo;
  var s = 0.0;
  for (var y = r0; y < r1; y++) { for (var x = q0; x < q1; x++) { s += src[((b * p.h + y) * p.w + x) * p.c + c]; } }
  dst[i] = s / f32((r1 - r0) * (q1 - q0));
}`,
  conv: `${header(['total', 'h', 'w', 'c', 'k', 'woff'])}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let i = index(id, n);
  if (i >= p.total) { return; }
  let c = i % p.c; let x = i32((i / p.c) % p.w); let y = i32((i / (p.c * p.w)) % p.h); let b = i / (p.c * p.w * p.h);
  let half = i32(p.k / 2u);
  var s = 0.0;
  for (var ki = 0; ki < i32(p.k); ki++) {
    let yy = y + ki - half;
    if (yy < 0 || yy >= i32(p.h)) { continue; }
    for (var kj = 0; kj < i32(p.k); kj++) {
      let xx = x + kj - half;
      if (xx < 0 || xx >= i32(p.w)) { continue; }
      s += src[((b * p.h + u32(yy)) * p.w + u32(xx)) * p.c + c] * w[p.woff + (u32(ki) * p.k + u32(kj)) * p.c + c];
    }
  }
  dst[i] = s;
}`,
  gate: `${header(['total', 'c', 'sigmoid', 'scale_bits'])}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let i = index(id, n);
  if (i >= p.total) { return; }
  let half = p.c / 2u; let c = i % half; let px = i / half;
  let a = src[px * p.c + c]; let b = src[px * p.c + half + c];
  dst[i] = select(a * b * bitcast<f32>(p.scale_bits), a / (1.0 + exp(-b)), p.sigmoid == 1u);
}`,
  resize: `${header(['total', 'hi', 'wi', 'h', 'w', 'c', 'out_c', 'off'])}
fn tap(d: u32, n_in: u32, n_out: u32) -> vec4<f32> {
  let s = max((f32(n_in) / f32(n_out)) * (f32(d) + 0.5) - 0.5, 0.0);
  let i0 = u32(s);
  return vec4<f32>(f32(i0), f32(select(i0, i0 + 1u, i0 + 1u < n_in)), 1.0 - (s - f32(i0)), s - f32(i0));
}
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let i = index(id, n);
  if (i >= p.total) { return; }
  let c = i % p.c; let x = (i / p.c) % p.w; let y = (i / (p.c * p.w)) % p.h; let b = i / (p.c * p.w * p.h);
  let ty = tap(y, p.hi, p.h); let tx = tap(x, p.wi, p.w);
  let at = b * p.hi;
  let v00 = src[((at + u32(ty.x)) * p.wi + u32(tx.x)) * p.c + c];
  let v01 = src[((at + u32(ty.x)) * p.wi + u32(tx.y)) * p.c + c];
  let v10 = src[((at + u32(ty.y)) * p.wi + u32(tx.x)) * p.c + c];
  let v11 = src[((at + u32(ty.y)) * p.wi + u32(tx.y)) * p.c + c];
  dst[((b * p.h + y) * p.w + x) * p.out_c + p.off + c] = ty.z * (tx.z * v00 + tx.w * v01) + ty.w * (tx.z * v10 + tx.w * v11);
}`,
} as const;

type Op = keyof typeof SHADERS;

/** The unfused pipeline of one layer configuration at one extent, with its buffers. */
export class UnfusedPyramidConv {
  private readonly steps: { pipeline: GPUComputePipeline; group: GPUBindGroup; total: number }[] = [];
  readonly out: GPUBuffer;
  private readonly buffers: GPUBuffer[] = [];

  private constructor(out: GPUBuffer) {
    this.out = out;
  }

  /** `u` and `weights` are f32 storage buffers ([B,H,W,Ci] and [S,K,K,Ci]). */
  static async create(device: GPUDevice, params: PyramidConvParams, e: { batch: number; height: number; width: number }, u: GPUBuffer, weights: GPUBuffer) {
    const pipelines = new Map<Op, GPUComputePipeline>();
    for (const op of Object.keys(SHADERS) as Op[]) {
      pipelines.set(op, await device.createComputePipelineAsync({ layout: 'auto', compute: { module: device.createShaderModule({ code: SHADERS[op] }), entryPoint: 'main' } }));
    }
    const { inner: ci, kernel: k, scales, gate } = params;
    const { batch: B, height: H, width: W } = e;
    const half = ci / 2;
    const outC = scales.length * half;
    const storage = (floats: number) => device.createBuffer({ size: Math.max(4, floats * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const self = new UnfusedPyramidConv(storage(B * H * W * outC));
    self.buffers.push(self.out);
    const step = (op: Op, src: GPUBuffer, dst: GPUBuffer, fields: number[], total: number) => {
      const pipeline = pipelines.get(op)!;
      const uniform = device.createBuffer({ size: Math.ceil((fields.length * 4) / 16) * 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      device.queue.writeBuffer(uniform, 0, new Uint32Array([...fields, 0, 0, 0, 0].slice(0, Math.ceil(fields.length / 4) * 4)));
      self.buffers.push(uniform);
      const entries: GPUBindGroupEntry[] = [
        { binding: 0, resource: { buffer: src } },
        { binding: 1, resource: { buffer: dst } },
        { binding: 2, resource: { buffer: uniform } },
      ];
      if (op === 'conv') entries.push({ binding: 3, resource: { buffer: weights } });
      self.steps.push({ pipeline, group: device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }), total });
    };
    const scaleBits = new Uint32Array(new Float32Array([Math.sqrt(half)]).buffer)[0]!;
    scales.forEach((s, g) => {
      const ho = s === 1 ? H : Math.floor(H * s);
      const wo = s === 1 ? W : Math.floor(W * s);
      let src = u;
      if (s !== 1) {
        const v = storage(B * ho * wo * ci);
        self.buffers.push(v);
        step('pool', u, v, [B * ho * wo * ci, H, W, ho, wo, ci], B * ho * wo * ci);
        src = v;
      }
      const d = storage(B * ho * wo * ci);
      const gg = storage(B * ho * wo * half);
      self.buffers.push(d, gg);
      step('conv', src, d, [B * ho * wo * ci, ho, wo, ci, k, g * k * k * ci], B * ho * wo * ci);
      step('gate', d, gg, [B * ho * wo * half, ci, gate === 'sigmoid' ? 1 : 0, scaleBits], B * ho * wo * half);
      step('resize', gg, self.out, [B * H * W * half, ho, wo, H, W, half, outC, g * half], B * H * W * half);
    });
    return self;
  }

  encode(pass: GPUComputePassEncoder): void {
    for (const s of this.steps) {
      pass.setPipeline(s.pipeline);
      pass.setBindGroup(0, s.group);
      const groups = Math.ceil(s.total / WG);
      const x = Math.min(groups, 65535);
      pass.dispatchWorkgroups(x, Math.ceil(groups / x));
    }
  }

  get dispatches(): number {
    return this.steps.length;
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
  }
}
