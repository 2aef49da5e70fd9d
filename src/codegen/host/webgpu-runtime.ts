/// <reference types="@webgpu/types" />
/**
 * WebGPU runtime of the generated pyramid-conv shaders: compiles a module, creates
 * its pipelines once, binds buffers and records the dispatches (low-res gates first,
 * then `fused`). Self-contained on purpose (no imports): the host-module generator
 * copies these declarations into every generated `deltac-kernels.ts`, and deltac's
 * tests and benchmarks use this file directly.
 */

/** What host code needs to bind and dispatch one generated module (see wgsl-kernel.ts). */
export interface WgslKernelInfo {
  id: string;
  inner: number;
  kernel: number;
  scales: number[];
  gate: 'simple' | 'sigmoid';
  /** A-channels per workgroup: dispatch y = (Ci/2) / ca. */
  ca: number;
  /** Output tile (rows, cols) of `fused` and of the `lowres_g*` entry points. */
  mainTile: [number, number];
  lowTile: [number, number];
  /** Entry points of the low-res gates, in gate order, with their scales. */
  lowEntries: { entry: string; gate: number; scale: number }[];
  workgroupSize: { main: number; low: number };
  /** Bytes of workgroup memory the largest entry point uses. */
  workgroupBytes: number;
}

/** Spatial extent of U / G. */
export interface KernelExtent {
  batch: number;
  height: number;
  width: number;
}

/** The GPU buffers of one run (sizes from PyramidConvKernel's *Bytes methods). */
export interface KernelBuffers {
  u: GPUBuffer;
  weights: GPUBuffer;
  out: GPUBuffer;
  workspace: GPUBuffer;
  params: GPUBuffer;
}

/** float32 → IEEE half bits (round to nearest even). */
export function halfBitsFromFloats(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const f = new Float32Array(1);
  const bits = new Uint32Array(f.buffer);
  for (let i = 0; i < src.length; i++) {
    f[0] = src[i]!;
    const x = bits[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    let h: number;
    if (exp === 0xff) h = sign | 0x7c00 | (mant ? 0x200 : 0);
    else {
      let e = exp - 112;
      if (e >= 0x1f) h = sign | 0x7c00;
      else if (e <= 0) {
        if (e < -10) h = sign;
        else {
          mant |= 0x800000;
          const shift = 14 - e;
          let m = mant >>> shift;
          const rest = mant & ((1 << shift) - 1);
          const halfway = 1 << (shift - 1);
          if (rest > halfway || (rest === halfway && m & 1)) m++;
          h = sign | m;
        }
      } else {
        let m = mant >>> 13;
        const rest = mant & 0x1fff;
        if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
          m++;
          if (m === 0x400) {
            m = 0;
            e++;
          }
        }
        h = e >= 0x1f ? sign | 0x7c00 : sign | (e << 10) | m;
      }
    }
    out[i] = h;
  }
  return out;
}

/** IEEE half bits → float32. */
export function floatsFromHalfBits(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const h = src[i]!;
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    out[i] = exp === 0 ? sign * mant * 2 ** -24 : exp === 0x1f ? (mant ? NaN : sign * Infinity) : sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return out;
}

const align4 = (n: number) => Math.max(4, Math.ceil(n / 4) * 4);

/** One configuration's compiled module and pipelines on one device. */
export class PyramidConvKernel {
  readonly device: GPUDevice;
  readonly info: WgslKernelInfo;
  /** Storage element type of the module. */
  readonly elem: 'f32' | 'f16';
  readonly layout: GPUBindGroupLayout;
  private readonly fused: GPUComputePipeline;
  private readonly lowres: GPUComputePipeline[];

  private constructor(device: GPUDevice, info: WgslKernelInfo, elem: 'f32' | 'f16', layout: GPUBindGroupLayout, fused: GPUComputePipeline, lowres: GPUComputePipeline[]) {
    this.device = device;
    this.info = info;
    this.elem = elem;
    this.layout = layout;
    this.fused = fused;
    this.lowres = lowres;
  }

  /** Compiles `code` (throws with the compiler's messages on error) and creates the pipelines. */
  static async create(device: GPUDevice, info: WgslKernelInfo, code: string, elem: 'f32' | 'f16'): Promise<PyramidConvKernel> {
    const { layout, pipelines } = await compilePipelines(device, code, `${info.id} (${elem})`, ['fused', ...info.lowEntries.map((e) => e.entry)]);
    const [fused, ...lowres] = pipelines;
    return new PyramidConvKernel(device, info, elem, layout, fused!, lowres);
  }

  get elementBytes(): number {
    return this.elem === 'f16' ? 2 : 4;
  }

  get outChannels(): number {
    return (this.info.scales.length * this.info.inner) / 2;
  }

  /** floor(H·s) × floor(W·s) of each low-res gate. */
  lowSizes(height: number, width: number): { ho: number; wo: number }[] {
    return this.info.lowEntries.map((e) => ({ ho: Math.floor(height * e.scale), wo: Math.floor(width * e.scale) }));
  }

  inputBytes(e: KernelExtent): number {
    return align4(e.batch * e.height * e.width * this.info.inner * this.elementBytes);
  }

  outputBytes(e: KernelExtent): number {
    return align4(e.batch * e.height * e.width * this.outChannels * this.elementBytes);
  }

  weightBytes(): number {
    return align4(this.info.scales.length * this.info.kernel ** 2 * this.info.inner * this.elementBytes);
  }

  workspaceBytes(e: KernelExtent): number {
    const half = this.info.inner / 2;
    return align4(this.lowSizes(e.height, e.width).reduce((a, s) => a + e.batch * s.ho * s.wo * half * 4, 0));
  }

  paramsBytes(): number {
    return 16 + 16 * this.info.lowEntries.length;
  }

  /** The uniform `Params` for an extent. */
  params(e: KernelExtent): Uint32Array<ArrayBuffer> {
    const p = new Uint32Array(this.paramsBytes() / 4);
    const [, tw] = this.info.mainTile;
    const [, ltw] = this.info.lowTile;
    p.set([e.batch, e.height, e.width, Math.ceil(e.width / tw)]);
    let offset = 0;
    this.lowSizes(e.height, e.width).forEach((s, i) => {
      if (s.ho < 1 || s.wo < 1) throw new Error(`${this.info.id}: scale ${this.info.lowEntries[i]!.scale} pools ${e.height}×${e.width} to an empty grid`);
      p.set([s.ho, s.wo, offset, Math.ceil(s.wo / ltw)], 4 + 4 * i);
      offset += e.batch * s.ho * s.wo * (this.info.inner / 2);
    });
    return p;
  }

  /** Allocates the buffers of one extent (weights and params uploaded by the caller). */
  createBuffers(e: KernelExtent, weights?: GPUBuffer): KernelBuffers {
    const d = this.device;
    const S = GPUBufferUsage.STORAGE;
    return {
      u: d.createBuffer({ size: this.inputBytes(e), usage: S | GPUBufferUsage.COPY_DST }),
      weights: weights ?? d.createBuffer({ size: this.weightBytes(), usage: S | GPUBufferUsage.COPY_DST }),
      out: d.createBuffer({ size: this.outputBytes(e), usage: S | GPUBufferUsage.COPY_SRC }),
      workspace: d.createBuffer({ size: this.workspaceBytes(e), usage: S }),
      params: d.createBuffer({ size: this.paramsBytes(), usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }),
    };
  }

  bindGroup(b: KernelBuffers): GPUBindGroup {
    return this.device.createBindGroup({
      layout: this.layout,
      entries: [b.u, b.weights, b.out, b.workspace, b.params].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
  }

  /** Records the dispatches of one run into a compute pass (params must already hold `e`). */
  encode(pass: GPUComputePassEncoder, group: GPUBindGroup, e: KernelExtent): void {
    const groups = this.info.inner / 2 / this.info.ca;
    const [lth, ltw] = this.info.lowTile;
    const [th, tw] = this.info.mainTile;
    pass.setBindGroup(0, group);
    this.lowSizes(e.height, e.width).forEach((s, i) => {
      pass.setPipeline(this.lowres[i]!);
      pass.dispatchWorkgroups(Math.ceil(s.ho / lth) * Math.ceil(s.wo / ltw), groups, e.batch);
    });
    pass.setPipeline(this.fused);
    pass.dispatchWorkgroups(Math.ceil(e.height / th) * Math.ceil(e.width / tw), groups, e.batch);
  }

  /** Host data → the module's element type, as bytes for writeBuffer. */
  encodeData(values: Float32Array): Uint8Array<ArrayBuffer> {
    const typed = this.elem === 'f16' ? halfBitsFromFloats(values) : values;
    const bytes = new Uint8Array(align4(typed.byteLength));
    bytes.set(new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength));
    return bytes;
  }

  /** Reads a buffer holding `count` elements of the module's type back as float32. */
  async readBack(buffer: GPUBuffer, count: number): Promise<Float32Array> {
    const size = align4(count * this.elementBytes);
    const staging = this.device.createBuffer({ size, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(buffer, 0, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const bytes = staging.getMappedRange().slice(0);
    staging.unmap();
    staging.destroy();
    return this.elem === 'f16' ? floatsFromHalfBits(new Uint16Array(bytes, 0, count)) : new Float32Array(bytes, 0, count);
  }

  /**
   * One complete run: U [B, H, W, Ci] and the gate weights [S, K, K, Ci] as float32 →
   * G [B, H, W, S·Ci/2] as float32. Pass `weights` as a GPUBuffer to reuse uploaded ones.
   */
  async run(u: Float32Array, weights: Float32Array | GPUBuffer, e: KernelExtent): Promise<Float32Array> {
    const expected = e.batch * e.height * e.width * this.info.inner;
    if (u.length !== expected) throw new Error(`${this.info.id}: input has ${u.length} elements, expected ${expected}`);
    const q = this.device.queue;
    const b = this.createBuffers(e, weights instanceof Float32Array ? undefined : weights);
    try {
      q.writeBuffer(b.u, 0, this.encodeData(u));
      if (weights instanceof Float32Array) q.writeBuffer(b.weights, 0, this.encodeData(weights));
      q.writeBuffer(b.params, 0, this.params(e));
      const enc = this.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      this.encode(pass, this.bindGroup(b), e);
      pass.end();
      q.submit([enc.finish()]);
      return await this.readBack(b.out, e.batch * e.height * e.width * this.outChannels);
    } finally {
      for (const [name, buf] of Object.entries(b)) if (name !== 'weights' || weights instanceof Float32Array) buf.destroy();
    }
  }
}

/**
 * Compiles a WGSL module and creates one compute pipeline per entry point, all on one
 * bind group layout (two read-only storage buffers, two read-write ones, a uniform);
 * WGSL and validation errors become one Error naming `what`.
 */
async function compilePipelines(
  device: GPUDevice,
  code: string,
  what: string,
  entryPoints: string[],
): Promise<{ layout: GPUBindGroupLayout; pipelines: GPUComputePipeline[] }> {
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ code, label: `deltac ${what}` });
  const messages = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error');
  const moduleError = await device.popErrorScope();
  if (messages.length || moduleError) {
    const text = messages.map((m) => `${m.lineNum}:${m.linePos} ${m.message}`).join('\n') || moduleError?.message;
    throw new Error(`WGSL module ${what} does not compile:\n${text}`);
  }
  const storage = (type: GPUBufferBindingType, binding: number): GPUBindGroupLayoutEntry => ({ binding, visibility: GPUShaderStage.COMPUTE, buffer: { type } });
  const layout = device.createBindGroupLayout({
    label: `deltac ${what}`,
    entries: [storage('read-only-storage', 0), storage('read-only-storage', 1), storage('storage', 2), storage('storage', 3), storage('uniform', 4)],
  });
  const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });
  device.pushErrorScope('validation');
  const pipelines = await Promise.all(
    entryPoints.map((entryPoint) => device.createComputePipelineAsync({ layout: pipelineLayout, compute: { module, entryPoint }, label: `${what}:${entryPoint}` })),
  );
  const pipelineError = await device.popErrorScope();
  if (pipelineError) throw new Error(`pipelines of ${what}: ${pipelineError.message}`);
  return { layout, pipelines };
}

/** Where the block's tensors lie in its weight buffer (elements; kernel-plan.ts blockWeightLayout). */
export interface BlockWeightOffsets {
  upWeight: number;
  upBias: number;
  gates: number;
  outWeight: number;
  outBias: number;
  poolWeight: number;
  poolBias: number;
  /** Elements of the whole buffer. */
  elements: number;
}

/**
 * The whole ΔConvBlock on one device: conv_up (`linear`), the pyramid module
 * (PyramidConvKernel), the per-image pool term (`mean`, `pool`) and conv_out (`linear`
 * with the pool term as a per-image bias), recorded into one compute pass.
 */
export class DeltaConvBlockKernel {
  readonly pyramid: PyramidConvKernel;
  readonly channels: number;
  readonly offsets: BlockWeightOffsets;
  private readonly layout: GPUBindGroupLayout;
  private readonly pipelines: { linear: GPUComputePipeline; mean: GPUComputePipeline; pool: GPUComputePipeline };

  private constructor(
    pyramid: PyramidConvKernel,
    channels: number,
    offsets: BlockWeightOffsets,
    layout: GPUBindGroupLayout,
    pipelines: { linear: GPUComputePipeline; mean: GPUComputePipeline; pool: GPUComputePipeline },
  ) {
    this.pyramid = pyramid;
    this.channels = channels;
    this.offsets = offsets;
    this.layout = layout;
    this.pipelines = pipelines;
  }

  /** Compiles the block module `code` (same element type as `pyramid`) and creates its pipelines. */
  static async create(pyramid: PyramidConvKernel, channels: number, offsets: BlockWeightOffsets, code: string): Promise<DeltaConvBlockKernel> {
    const { layout, pipelines } = await compilePipelines(pyramid.device, code, `block (${pyramid.elem})`, ['linear', 'mean', 'pool']);
    const [linear, mean, pool] = pipelines;
    return new DeltaConvBlockKernel(pyramid, channels, offsets, layout, { linear: linear!, mean: mean!, pool: pool! });
  }

  /**
   * Uploads block weights; returns the buffer and the gates' own buffer (the pyramid module
   * binds it whole). The gates' slot of the block buffer is left zero (no block step reads
   * it), so the gate weights cross to the device once: into `gates`, or not at all when the
   * caller passes the buffer it already uploaded them to (the same layer's runLayer weights).
   */
  uploadWeights(values: Float32Array, label = 'deltac block weights', gates?: GPUBuffer): { weights: GPUBuffer; gates: GPUBuffer } {
    if (values.length !== this.offsets.elements) throw new Error(`${this.pyramid.info.id}: block weights hold ${values.length} elements, expected ${this.offsets.elements}`);
    const d = this.pyramid.device;
    const o = this.offsets;
    const es = this.pyramid.elementBytes;
    const weights = d.createBuffer({ size: align4(values.length * es), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label });
    // every slot starts at a multiple of BLOCK_WEIGHT_ALIGN elements: both byte offsets are multiples of 4
    d.queue.writeBuffer(weights, 0, this.pyramid.encodeData(values.subarray(0, o.gates)));
    d.queue.writeBuffer(weights, o.outWeight * es, this.pyramid.encodeData(values.subarray(o.outWeight)));
    if (gates) return { weights, gates };
    const info = this.pyramid.info;
    const gateData = this.pyramid.encodeData(values.subarray(o.gates, o.gates + info.scales.length * info.kernel ** 2 * info.inner));
    const own = d.createBuffer({ size: gateData.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, label: `${label} (gates)` });
    d.queue.writeBuffer(own, 0, gateData);
    return { weights, gates: own };
  }

  /**
   * One complete run: tokens x [B, H·W, C] as float32 and the block weights (float32 in the
   * block layout, or buffers from uploadWeights) → out [B, H·W, C] as float32.
   */
  async run(x: Float32Array, weights: Float32Array | { weights: GPUBuffer; gates: GPUBuffer }, e: KernelExtent): Promise<Float32Array> {
    const { batch, height, width } = e;
    const c = this.channels;
    const info = this.pyramid.info;
    const tokens = height * width;
    const rows = batch * tokens;
    if (x.length !== rows * c) throw new Error(`${info.id}: x has ${x.length} elements, expected ${batch}·${tokens}·${c}`);
    if (Math.ceil(rows / 16) > 65535) throw new Error(`${info.id}: ${rows} tokens exceed one dispatch (at most ${65535 * 16})`);
    const d = this.pyramid.device;
    const q = d.queue;
    const S = GPUBufferUsage.STORAGE;
    const owned: GPUBuffer[] = [];
    const buffer = (size: number, usage: number) => {
      const b = d.createBuffer({ size: align4(size), usage });
      owned.push(b);
      return b;
    };
    try {
      const w = weights instanceof Float32Array ? this.uploadWeights(weights) : weights;
      if (weights instanceof Float32Array) owned.push(w.weights, w.gates);
      const es = this.pyramid.elementBytes;
      const gOut = this.pyramid.outChannels;
      const xBuf = buffer(rows * c * es, S | GPUBufferUsage.COPY_DST);
      const outBuf = buffer(rows * c * es, S | GPUBufferUsage.COPY_SRC);
      const pyr = this.pyramid.createBuffers(e, w.gates);
      owned.push(pyr.u, pyr.out, pyr.workspace, pyr.params);
      const aux = buffer(2 * batch * c * 4, S);
      q.writeBuffer(xBuf, 0, this.pyramid.encodeData(x));
      q.writeBuffer(pyr.params, 0, this.pyramid.params(e));
      const o = this.offsets;
      const NONE = 0xffffffff;
      const step = (src: GPUBuffer, dst: GPUBuffer, p: number[]) => {
        const params = buffer(48, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
        q.writeBuffer(params, 0, new Uint32Array([...p, 0, 0, 0].slice(0, 12)));
        return d.createBindGroup({ layout: this.layout, entries: [src, w.weights, dst, aux, params].map((b, binding) => ({ binding, resource: { buffer: b } })) });
      };
      // Params: rows, n, k, w_off, b_off, bias_rows, bias_base, b_off2, batch
      const up = step(xBuf, pyr.u, [rows, info.inner, c, o.upWeight, o.upBias, 0, 0, NONE, batch]);
      const mean = step(xBuf, outBuf, [tokens, c, 0, 0, NONE, 0, 0, NONE, batch]);
      const pool = step(xBuf, outBuf, [tokens, c, 0, o.poolWeight, o.poolBias, 0, 0, o.outBias, batch]);
      const down = step(pyr.out, outBuf, [rows, c, gOut, o.outWeight, NONE, tokens, batch * c, NONE, batch]);
      const enc = d.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(this.pipelines.linear);
      pass.setBindGroup(0, up);
      pass.dispatchWorkgroups(Math.ceil(info.inner / 16), Math.ceil(rows / 16));
      this.pyramid.encode(pass, this.pyramid.bindGroup(pyr), e);
      pass.setPipeline(this.pipelines.mean);
      pass.setBindGroup(0, mean);
      pass.dispatchWorkgroups(Math.ceil(c / 64), batch);
      pass.setPipeline(this.pipelines.pool);
      pass.setBindGroup(0, pool);
      pass.dispatchWorkgroups(Math.ceil(c / 64), batch);
      pass.setPipeline(this.pipelines.linear);
      pass.setBindGroup(0, down);
      pass.dispatchWorkgroups(Math.ceil(c / 16), Math.ceil(rows / 16));
      pass.end();
      q.submit([enc.finish()]);
      return await this.pyramid.readBack(outBuf, rows * c);
    } finally {
      for (const b of owned) b.destroy();
    }
  }
}
