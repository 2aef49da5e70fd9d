;; The Linear layer of the CPU reference (delta-conv-block.ts), in WebAssembly SIMD:
;;   y[p, o] = bias[o] + sum_i x[p, i]·w[o, i]
;; x [rows, in], w [out, in], bias [out] and y [rows, out] are row-major f32 arrays in the
;; exported memory; their byte addresses are the arguments. Sums are f32x4: lane k adds the
;; terms i ≡ k (mod 4) in order, then the lanes are added as (l0 + l2) + (l1 + l3), then bias.
;;
;; Compiled by scripts/build-linear-wasm.ts into linear-wasm.ts (npm run build:wasm).
(module
  (memory (export "memory") 1)

  ;; The lane sums of a, b, c and d, in one vector: [a0 + a1 + a2 + a3, b…, c…, d…], each
  ;; as (l0 + l2) + (l1 + l3). In a shuffle, f32 lane j is bytes 4j..4j+3 and 16 and up
  ;; are the second operand's.
  (func $hsum4 (param $a v128) (param $b v128) (param $c v128) (param $d v128) (result v128)
    (local $ab v128)
    (local $cd v128)
    ;; [a0 + a2, b0 + b2, a1 + a3, b1 + b3]
    (local.set $ab
      (f32x4.add
        (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a) (local.get $b))
        (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a) (local.get $b))))
    ;; [c0 + c2, d0 + d2, c1 + c3, d1 + d3]
    (local.set $cd
      (f32x4.add
        (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $c) (local.get $d))
        (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $c) (local.get $d))))
    ;; [(a0 + a2) + (a1 + a3), …]
    (f32x4.add
      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $ab) (local.get $cd))
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $ab) (local.get $cd))))

  ;; One output: bias + x row · w row (in floats), with the same lanes and order as the blocks.
  (func $dot (param $x i32) (param $w i32) (param $in i32) (param $bias f32) (result f32)
    (local $acc v128)
    (local $i i32)
    ;; four terms a step while four are left
    (block $vectors_done
      (loop $step
        (br_if $vectors_done (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $in)))
        (local.set $acc (f32x4.add (local.get $acc)
          (f32x4.mul (v128.load (local.get $x)) (v128.load (local.get $w)))))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $step)))
    ;; then the last in % 4 one at a time, in lane 0 (load32_zero: the other lanes add 0)
    (block $done
      (loop $tail
        (br_if $done (i32.ge_u (local.get $i) (local.get $in)))
        (local.set $acc (f32x4.add (local.get $acc)
          (f32x4.mul (v128.load32_zero (local.get $x)) (v128.load32_zero (local.get $w)))))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $w (i32.add (local.get $w) (i32.const 4)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))
    (f32.add
      (f32.add
        (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 2 (local.get $acc)))
        (f32.add (f32x4.extract_lane 1 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc))))
      (local.get $bias)))

  ;; $dot for every (p, o) of rows [p0, p1) × outputs [o0, o1).
  (func $dots (param $x i32) (param $w i32) (param $b i32) (param $y i32)
              (param $in i32) (param $out i32)
              (param $p0 i32) (param $p1 i32) (param $o0 i32) (param $o1 i32)
    (local $p i32)
    (local $o i32)
    (local.set $p (local.get $p0))
    (block $rows_done
      (loop $row
        (br_if $rows_done (i32.ge_u (local.get $p) (local.get $p1)))
        (local.set $o (local.get $o0))
        (block $outs_done
          (loop $output
            (br_if $outs_done (i32.ge_u (local.get $o) (local.get $o1)))
            ;; y[p, o] at y + 4·(p·out + o); x row p at x + 4·p·in; w row o at w + 4·o·in
            (f32.store
              (i32.add (local.get $y)
                (i32.shl (i32.add (i32.mul (local.get $p) (local.get $out)) (local.get $o)) (i32.const 2)))
              (call $dot
                (i32.add (local.get $x) (i32.shl (i32.mul (local.get $p) (local.get $in)) (i32.const 2)))
                (i32.add (local.get $w) (i32.shl (i32.mul (local.get $o) (local.get $in)) (i32.const 2)))
                (local.get $in)
                (f32.load (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 2))))))
            (local.set $o (i32.add (local.get $o) (i32.const 1)))
            (br $output)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $row))))

  ;; The whole layer. Blocks of 4 rows × 4 outputs share each pass over i: per step, four
  ;; x vectors (rows p..p+3, inputs i..i+3) and four w vectors (outputs o..o+3) feed the
  ;; sixteen accumulators $a<row><output>. The rows and outputs left over (rows % 4,
  ;; out % 4) go through $dots.
  (func (export "linear") (param $x i32) (param $w i32) (param $b i32) (param $y i32)
                          (param $rows i32) (param $in i32) (param $out i32)
    (local $rows4 i32) (local $out4 i32)
    (local $rowBytes i32) (local $rowBytes2 i32) (local $rowBytes3 i32) (local $outBytes i32)
    (local $p i32) (local $o i32) (local $i i32)
    (local $xp i32) (local $wo i32) (local $xi i32) (local $wi i32) (local $yp i32)
    (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128)
    (local $a00 v128) (local $a01 v128) (local $a02 v128) (local $a03 v128)
    (local $a10 v128) (local $a11 v128) (local $a12 v128) (local $a13 v128)
    (local $a20 v128) (local $a21 v128) (local $a22 v128) (local $a23 v128)
    (local $a30 v128) (local $a31 v128) (local $a32 v128) (local $a33 v128)
    (local $bias v128)
    (local.set $rows4 (i32.and (local.get $rows) (i32.const -4)))
    (local.set $out4 (i32.and (local.get $out) (i32.const -4)))
    ;; bytes of one x or w row, of one y row
    (local.set $rowBytes (i32.shl (local.get $in) (i32.const 2)))
    (local.set $rowBytes2 (i32.shl (local.get $rowBytes) (i32.const 1)))
    (local.set $rowBytes3 (i32.add (local.get $rowBytes2) (local.get $rowBytes)))
    (local.set $outBytes (i32.shl (local.get $out) (i32.const 2)))

    (block $rows_done
      (loop $row_block
        (br_if $rows_done (i32.ge_u (local.get $p) (local.get $rows4)))
        (local.set $xp (i32.add (local.get $x) (i32.mul (local.get $p) (local.get $rowBytes))))
        (local.set $o (i32.const 0))
        (block $outs_done
          (loop $out_block
            (br_if $outs_done (i32.ge_u (local.get $o) (local.get $out4)))
            (local.set $wo (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $rowBytes))))
            (local.set $a00 (v128.const i32x4 0 0 0 0)) (local.set $a01 (v128.const i32x4 0 0 0 0))
            (local.set $a02 (v128.const i32x4 0 0 0 0)) (local.set $a03 (v128.const i32x4 0 0 0 0))
            (local.set $a10 (v128.const i32x4 0 0 0 0)) (local.set $a11 (v128.const i32x4 0 0 0 0))
            (local.set $a12 (v128.const i32x4 0 0 0 0)) (local.set $a13 (v128.const i32x4 0 0 0 0))
            (local.set $a20 (v128.const i32x4 0 0 0 0)) (local.set $a21 (v128.const i32x4 0 0 0 0))
            (local.set $a22 (v128.const i32x4 0 0 0 0)) (local.set $a23 (v128.const i32x4 0 0 0 0))
            (local.set $a30 (v128.const i32x4 0 0 0 0)) (local.set $a31 (v128.const i32x4 0 0 0 0))
            (local.set $a32 (v128.const i32x4 0 0 0 0)) (local.set $a33 (v128.const i32x4 0 0 0 0))
            (local.set $xi (local.get $xp))
            (local.set $wi (local.get $wo))
            (local.set $i (i32.const 0))
            ;; x[p + r, i..i+3] and w[o + c, i..i+3] while four inputs are left
            (block $vectors_done
              (loop $step
                (br_if $vectors_done (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $in)))
                (local.set $x0 (v128.load (local.get $xi)))
                (local.set $x1 (v128.load (i32.add (local.get $xi) (local.get $rowBytes))))
                (local.set $x2 (v128.load (i32.add (local.get $xi) (local.get $rowBytes2))))
                (local.set $x3 (v128.load (i32.add (local.get $xi) (local.get $rowBytes3))))
                (local.set $w0 (v128.load (local.get $wi)))
                (local.set $w1 (v128.load (i32.add (local.get $wi) (local.get $rowBytes))))
                (local.set $w2 (v128.load (i32.add (local.get $wi) (local.get $rowBytes2))))
                (local.set $w3 (v128.load (i32.add (local.get $wi) (local.get $rowBytes3))))
                (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $x0) (local.get $w0))))
                (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $x0) (local.get $w1))))
                (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $x0) (local.get $w2))))
                (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $x0) (local.get $w3))))
                (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $x1) (local.get $w0))))
                (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $x1) (local.get $w1))))
                (local.set $a12 (f32x4.add (local.get $a12) (f32x4.mul (local.get $x1) (local.get $w2))))
                (local.set $a13 (f32x4.add (local.get $a13) (f32x4.mul (local.get $x1) (local.get $w3))))
                (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $x2) (local.get $w0))))
                (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $x2) (local.get $w1))))
                (local.set $a22 (f32x4.add (local.get $a22) (f32x4.mul (local.get $x2) (local.get $w2))))
                (local.set $a23 (f32x4.add (local.get $a23) (f32x4.mul (local.get $x2) (local.get $w3))))
                (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $x3) (local.get $w0))))
                (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $x3) (local.get $w1))))
                (local.set $a32 (f32x4.add (local.get $a32) (f32x4.mul (local.get $x3) (local.get $w2))))
                (local.set $a33 (f32x4.add (local.get $a33) (f32x4.mul (local.get $x3) (local.get $w3))))
                (local.set $xi (i32.add (local.get $xi) (i32.const 16)))
                (local.set $wi (i32.add (local.get $wi) (i32.const 16)))
                (local.set $i (i32.add (local.get $i) (i32.const 4)))
                (br $step)))
            ;; then the last in % 4 inputs one at a time, in lane 0 (the other lanes add 0), into
            ;; the same sixteen sums
            (block $i_done
              (loop $tail
                (br_if $i_done (i32.ge_u (local.get $i) (local.get $in)))
                (local.set $x0 (v128.load32_zero (local.get $xi)))
                (local.set $x1 (v128.load32_zero (i32.add (local.get $xi) (local.get $rowBytes))))
                (local.set $x2 (v128.load32_zero (i32.add (local.get $xi) (local.get $rowBytes2))))
                (local.set $x3 (v128.load32_zero (i32.add (local.get $xi) (local.get $rowBytes3))))
                (local.set $w0 (v128.load32_zero (local.get $wi)))
                (local.set $w1 (v128.load32_zero (i32.add (local.get $wi) (local.get $rowBytes))))
                (local.set $w2 (v128.load32_zero (i32.add (local.get $wi) (local.get $rowBytes2))))
                (local.set $w3 (v128.load32_zero (i32.add (local.get $wi) (local.get $rowBytes3))))
                (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $x0) (local.get $w0))))
                (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $x0) (local.get $w1))))
                (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $x0) (local.get $w2))))
                (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $x0) (local.get $w3))))
                (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $x1) (local.get $w0))))
                (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $x1) (local.get $w1))))
                (local.set $a12 (f32x4.add (local.get $a12) (f32x4.mul (local.get $x1) (local.get $w2))))
                (local.set $a13 (f32x4.add (local.get $a13) (f32x4.mul (local.get $x1) (local.get $w3))))
                (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $x2) (local.get $w0))))
                (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $x2) (local.get $w1))))
                (local.set $a22 (f32x4.add (local.get $a22) (f32x4.mul (local.get $x2) (local.get $w2))))
                (local.set $a23 (f32x4.add (local.get $a23) (f32x4.mul (local.get $x2) (local.get $w3))))
                (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $x3) (local.get $w0))))
                (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $x3) (local.get $w1))))
                (local.set $a32 (f32x4.add (local.get $a32) (f32x4.mul (local.get $x3) (local.get $w2))))
                (local.set $a33 (f32x4.add (local.get $a33) (f32x4.mul (local.get $x3) (local.get $w3))))
                (local.set $xi (i32.add (local.get $xi) (i32.const 4)))
                (local.set $wi (i32.add (local.get $wi) (i32.const 4)))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br $tail)))
            ;; y[p + r, o..o+3] = bias[o..o+3] + the lane sums of a<r>0..a<r>3
            (local.set $bias (v128.load (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 2)))))
            (local.set $yp (i32.add (local.get $y)
              (i32.shl (i32.add (i32.mul (local.get $p) (local.get $out)) (local.get $o)) (i32.const 2))))
            (v128.store (local.get $yp)
              (f32x4.add (call $hsum4 (local.get $a00) (local.get $a01) (local.get $a02) (local.get $a03)) (local.get $bias)))
            (local.set $yp (i32.add (local.get $yp) (local.get $outBytes)))
            (v128.store (local.get $yp)
              (f32x4.add (call $hsum4 (local.get $a10) (local.get $a11) (local.get $a12) (local.get $a13)) (local.get $bias)))
            (local.set $yp (i32.add (local.get $yp) (local.get $outBytes)))
            (v128.store (local.get $yp)
              (f32x4.add (call $hsum4 (local.get $a20) (local.get $a21) (local.get $a22) (local.get $a23)) (local.get $bias)))
            (local.set $yp (i32.add (local.get $yp) (local.get $outBytes)))
            (v128.store (local.get $yp)
              (f32x4.add (call $hsum4 (local.get $a30) (local.get $a31) (local.get $a32) (local.get $a33)) (local.get $bias)))
            (local.set $o (i32.add (local.get $o) (i32.const 4)))
            (br $out_block)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $row_block)))

    ;; the outputs past out4 of the blocked rows, then every output of the rows past rows4
    (call $dots (local.get $x) (local.get $w) (local.get $b) (local.get $y) (local.get $in) (local.get $out)
      (i32.const 0) (local.get $rows4) (local.get $out4) (local.get $out))
    (call $dots (local.get $x) (local.get $w) (local.get $b) (local.get $y) (local.get $in) (local.get $out)
      (local.get $rows4) (local.get $rows) (i32.const 0) (local.get $out)))
)
