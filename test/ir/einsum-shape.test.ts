/** The Einsum shape rule: explicit and implicit outputs, ellipsis broadcasting, and "unknown" where the operands do not say. */
import { describe, expect, it } from 'vitest';
import { einsumShape, parseEinsum } from '../../src/ir/shape-inference/einsum.js';

describe('einsumShape', () => {
  it('the attention forms of LDM code', () => {
    expect(einsumShape('bid,bjd->bij', [['bh', 'n', 40], ['bh', 'm', 40]])).toEqual(['bh', 'n', 'm']);
    expect(einsumShape('b i j, b j d -> b i d', [['bh', 'n', 'n'], ['bh', 'n', 40]])).toEqual(['bh', 'n', 40]);
    expect(einsumShape('bhid,bhjd->bhij', [[2, 8, 64, 40], [2, 8, 77, 40]])).toEqual([2, 8, 64, 77]);
  });

  it('implicit output: ellipsis dims, then letters that occur once in ASCII order', () => {
    expect(einsumShape('ij,jk', [[3, 4], [4, 5]])).toEqual([3, 5]);
    expect(einsumShape('ba', [[3, 4]])).toEqual([4, 3]);
    expect(einsumShape('Ab,bA', [[3, 4], [4, 3]])).toEqual([]);
    expect(einsumShape('bA', [[3, 4]])).toEqual([4, 3]); // 'A' < 'b'
    expect(einsumShape('ii', [[3, 3]])).toEqual([]); // trace
    expect(einsumShape('...ij,...jk', [[2, 1, 3, 4], [5, 4, 6]])).toEqual([2, 5, 3, 6]);
  });

  it('ellipsis anywhere in a term, broadcast right-aligned across operands', () => {
    expect(einsumShape('i...j,j...->...i', [[3, 7, 8, 4], [4, 8]])).toEqual([7, 8, 3]);
    expect(einsumShape('...ii->...i', [[3, 4, 4]])).toEqual([3, 4]);
    expect(einsumShape('...,...->...', [['a', 1], [5]])).toEqual(['a', 5]);
    expect(einsumShape('ij...->ij', [[2, 3, 4, 5]])).toEqual([2, 3]);
    expect(einsumShape('ij->...ij', [[2, 3]])).toEqual([2, 3]);
  });

  it('a letter takes the size its occurrences agree on; 1 broadcasts; different symbols are unknown', () => {
    expect(einsumShape('ij,ij->ij', [[1, 'n'], [4, 'n']])).toEqual([4, 'n']);
    expect(einsumShape('ij,ij->ij', [['a', 3], ['b', 3]])).toEqual([null, 3]);
    expect(einsumShape('ij,ij->ij', [['a', 3], [5, 3]])).toEqual([5, 3]);
    expect(einsumShape('ij,jk->ik', [[2, 3], null])).toEqual([2, null]);
    // an unknown operand hides the size of its ellipsis, not of the explicit output
    expect(einsumShape('...i,i->...', [null, [4]])).toBeNull();
    expect(einsumShape('...i,i->i', [null, [4]])).toEqual([4]);
  });

  it('gives no shape for equations that do not fit the operands', () => {
    expect(einsumShape('ij,jk->ik', [[2, 3]])).toBeNull(); // operand count
    expect(einsumShape('ijk->ij', [[2, 3]])).toBeNull(); // rank
    expect(einsumShape('...ijk->ij', [[2, 3]])).toBeNull();
    expect(einsumShape('ij->iz', [[2, 3]])).toBeNull(); // output letter not in inputs
    expect(einsumShape('ij->ii', [[2, 3]])).toBeNull();
    expect(einsumShape('i.j->i', [[2, 3]])).toBeNull();
    expect(einsumShape('i1->i', [[2, 3]])).toBeNull();
    expect(einsumShape('ij->j->i', [[2, 3]])).toBeNull();
    expect(parseEinsum('......->')).toBeNull();
  });
});
