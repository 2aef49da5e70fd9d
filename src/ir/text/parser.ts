/**
 * Parser of deltac's textual IR into an AST (chevrotain). `build.ts` turns the AST
 * into IR. The grammar (see printer.ts for the canonical layout):
 *
 *   model    := ('model' '{' entry (',' entry)* '}')? graph function*
 *   function := 'function' '{' (entry | 'attributes' '=' '{' (name ('=' attr)?) (',' …)* '}') (',' …)* '}' graph
 *   graph    := 'graph' InitRef '(' params ')' '->' '(' params ')' '{' stmt* '}'
 *   param    := (ValueRef | InitRef) (':' type)?
 *   stmt     := InitRef ':' type '=' tensor
 *             | results? OpName '(' args ')' attrs? (':' types)? ('overload' '(' String ')')? ('loc' '(' String ')')? ('meta' dict)?
 *   results  := ref (',' ref)* '='          ref := ValueRef | '_'
 *   args     := (ValueRef | InitRef | '_') (',' …)*
 *   attr     := Int | Float | String | list | tensor | graph | 'opaque' '<' String '>' | 'ref' '(' String ':' attrType ')'
 *   type     := dtype '[' dims | '*' ']' | '?' | 'opaque' '<' String '>'
 *   tensor   := 'tensor' '<' type '>' ( '[' numbers ']' | 'elided' '(' String ')' | 'external' '(' String ',' Int ',' Int ')' )
 */
import { EmbeddedActionsParser, type IToken } from 'chevrotain';
import { DeltacError } from '../errors.js';
import {
  Arrow,
  Colon,
  Comma,
  Equals,
  FloatLit,
  Identifier,
  InitRef,
  IntLit,
  LAngle,
  LBrace,
  LBracket,
  LParen,
  Question,
  RAngle,
  RBrace,
  RBracket,
  RParen,
  Star,
  StringLit,
  ValueRef,
  allTokens,
  refName,
  textLexer,
  unquote,
} from './lexer.js';

export type DimAst = number | string | null;
export type TypeAst =
  | { kind: 'tensor'; dtype: string; shape: DimAst[] | null }
  | { kind: 'unknown' }
  | { kind: 'opaque'; summary: string };

export type TensorDataAst =
  /** Element literals as written (ints stay exact beyond 2^53). */
  | { kind: 'dense'; values: string[] }
  | { kind: 'strings'; values: string[] }
  | { kind: 'elided'; digest: string }
  | { kind: 'external'; location: string; offset: number; length: number };

export interface TensorAst {
  type: TypeAst;
  data: TensorDataAst;
}

export type AttrAst =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'strings'; value: string[] }
  | { kind: 'tensor'; value: TensorAst }
  | { kind: 'tensors'; value: TensorAst[] }
  | { kind: 'graph'; value: GraphAst }
  | { kind: 'graphs'; value: GraphAst[] }
  | { kind: 'ref'; ref: string; of: string }
  | { kind: 'opaque'; summary: string };

export interface RefAst {
  kind: 'value' | 'init';
  name: string;
}

export interface ParamAst {
  ref: RefAst;
  type: TypeAst | null;
  line: number;
}

export interface NodeAst {
  /** Output names; null for an omitted output (`_`). */
  results: (string | null)[];
  op: string;
  args: (RefAst | null)[];
  attrs: [string, AttrAst][];
  types: TypeAst[];
  loc: string;
  overload: string;
  meta: [string, string][];
  line: number;
}

export interface InitAst {
  name: string;
  tensor: TensorAst;
  line: number;
}

export interface GraphAst {
  name: string;
  inputs: ParamAst[];
  outputs: ParamAst[];
  inits: InitAst[];
  nodes: NodeAst[];
}

export type HeaderValue = number | string | [string, string | number][];

/** A function attribute declaration: its name and its default, if any. */
export interface AttrDeclAst {
  name: string;
  default: AttrAst | null;
}

export interface FunctionAst {
  header: [string, HeaderValue][];
  attributes: AttrDeclAst[];
  graph: GraphAst;
  line: number;
}

export interface ModelAst {
  header: [string, HeaderValue][];
  graph: GraphAst;
  functions: FunctionAst[];
}

class TextParser extends EmbeddedActionsParser {
  constructor() {
    super(allTokens, { recoveryEnabled: false, maxLookahead: 3 });
    this.performSelfAnalysis();
  }

  /** Token text helpers: during chevrotain's grammar recording, images are placeholders. */
  private str(image: string): string {
    return this.RECORDING_PHASE ? '' : unquote(image);
  }

  private name(image: string): string {
    return this.RECORDING_PHASE ? '' : refName(image);
  }

  private keyword(word: string): IToken {
    const tok = this.CONSUME(Identifier, { ERR_MSG: `expected "${word}"` });
    this.ACTION(() => {
      if (tok.image !== word) throw new TextSyntaxError(`expected "${word}", found "${tok.image}"`, tok);
    });
    return tok;
  }

  model = this.RULE('model', (): ModelAst => {
    const header: [string, HeaderValue][] = [];
    this.OPTION(() => {
      this.keyword('model');
      this.CONSUME(LBrace);
      this.MANY_SEP({
        SEP: Comma,
        DEF: () => {
          const key = this.CONSUME2(Identifier).image;
          this.CONSUME(Equals);
          header.push([key, this.SUBRULE(this.headerValue)]);
        },
      });
      this.CONSUME(RBrace);
    });
    const graph = this.SUBRULE(this.graph);
    const functions: FunctionAst[] = [];
    this.MANY({ GATE: () => this.LA(1).image === 'function', DEF: () => functions.push(this.SUBRULE(this.function)) });
    return { header, graph, functions };
  });

  function = this.RULE('function', (): FunctionAst => {
    const line = this.keyword('function').startLine ?? 0;
    const header: [string, HeaderValue][] = [];
    const attributes: AttrDeclAst[] = [];
    this.CONSUME(LBrace);
    this.MANY_SEP({
      SEP: Comma,
      DEF: () => {
        const key = this.CONSUME2(Identifier).image;
        this.CONSUME(Equals);
        this.OR([
          {
            GATE: () => key === 'attributes',
            IGNORE_AMBIGUITIES: true,
            ALT: () => {
              this.CONSUME2(LBrace);
              this.MANY_SEP2({ SEP: Comma, DEF: () => attributes.push(this.SUBRULE(this.attrDecl)) });
              this.CONSUME2(RBrace);
            },
          },
          { ALT: () => header.push([key, this.SUBRULE(this.headerValue)]) },
        ]);
      },
    });
    this.CONSUME(RBrace);
    const graph = this.SUBRULE(this.graph);
    return { header, attributes, graph, line };
  });

  attrDecl = this.RULE('attrDecl', (): AttrDeclAst => {
    const name = this.OR([
      { ALT: () => this.CONSUME(Identifier).image },
      { ALT: () => this.str(this.CONSUME(StringLit).image) },
    ]);
    let value: AttrAst | null = null;
    this.OPTION(() => {
      this.CONSUME(Equals);
      value = this.SUBRULE(this.attrValue);
    });
    return { name, default: value };
  });

  headerValue = this.RULE('headerValue', (): HeaderValue => {
    return this.OR([
      { ALT: () => Number(this.CONSUME(IntLit).image) },
      { ALT: () => this.str(this.CONSUME(StringLit).image) },
      {
        ALT: () => {
          const entries: [string, string | number][] = [];
          this.CONSUME(LBrace);
          this.MANY_SEP({
            SEP: Comma,
            DEF: () => {
              const k = this.str(this.CONSUME2(StringLit).image);
              this.CONSUME(Equals);
              const v = this.OR2([
                { ALT: () => Number(this.CONSUME2(IntLit).image) as string | number },
                { ALT: () => this.str(this.CONSUME3(StringLit).image) },
              ]);
              entries.push([k, v]);
            },
          });
          this.CONSUME(RBrace);
          return entries;
        },
      },
    ]);
  });

  graph = this.RULE('graph', (): GraphAst => {
    this.keyword('graph');
    return this.SUBRULE(this.graphBody);
  });

  graphBody = this.RULE('graphBody', (): GraphAst => {
    const name = this.name(this.CONSUME(InitRef).image);
    this.CONSUME(LParen);
    const inputs: ParamAst[] = [];
    this.MANY_SEP({ SEP: Comma, DEF: () => inputs.push(this.SUBRULE(this.param)) });
    this.CONSUME(RParen);
    this.CONSUME(Arrow);
    this.CONSUME2(LParen);
    const outputs: ParamAst[] = [];
    this.MANY_SEP2({ SEP: Comma, DEF: () => outputs.push(this.SUBRULE2(this.param)) });
    this.CONSUME2(RParen);
    this.CONSUME(LBrace);
    const inits: InitAst[] = [];
    const nodes: NodeAst[] = [];
    this.MANY(() => {
      this.OR([
        {
          GATE: () => this.LA(1).tokenType === InitRef && this.LA(2).tokenType === Colon,
          ALT: () => inits.push(this.SUBRULE(this.init)),
        },
        { ALT: () => nodes.push(this.SUBRULE(this.node)) },
      ]);
    });
    this.CONSUME(RBrace);
    return { name, inputs, outputs, inits, nodes };
  });

  param = this.RULE('param', (): ParamAst => {
    const line = this.LA(1).startLine ?? 0;
    const ref = this.SUBRULE(this.ref);
    let type: TypeAst | null = null;
    this.OPTION(() => {
      this.CONSUME(Colon);
      type = this.SUBRULE(this.type);
    });
    return { ref, type, line };
  });

  ref = this.RULE('ref', (): RefAst => {
    return this.OR([
      { ALT: () => ({ kind: 'value' as const, name: this.name(this.CONSUME(ValueRef).image) }) },
      { ALT: () => ({ kind: 'init' as const, name: this.name(this.CONSUME(InitRef).image) }) },
    ]);
  });

  init = this.RULE('init', (): InitAst => {
    const tok = this.CONSUME(InitRef);
    this.CONSUME(Colon);
    this.SUBRULE(this.type);
    this.CONSUME(Equals);
    const tensor = this.SUBRULE(this.tensor);
    return { name: this.name(tok.image), tensor, line: tok.startLine ?? 0 };
  });

  node = this.RULE('node', (): NodeAst => {
    const results: (string | null)[] = [];
    this.OPTION(() => {
      this.AT_LEAST_ONE_SEP({
        SEP: Comma,
        DEF: () =>
          results.push(
            this.OR([
              { ALT: () => this.name(this.CONSUME(ValueRef).image) as string | null },
              { ALT: () => (this.CONSUME(Identifier), null) }, // `_`
            ]),
          ),
      });
      this.CONSUME(Equals);
    });
    const opTok = this.CONSUME2(Identifier);
    this.CONSUME(LParen);
    const args: (RefAst | null)[] = [];
    this.MANY_SEP({
      SEP: Comma,
      DEF: () =>
        args.push(
          this.OR2([
            { ALT: () => this.SUBRULE(this.ref) as RefAst | null },
            { ALT: () => (this.CONSUME3(Identifier), null) },
          ]),
        ),
    });
    this.CONSUME(RParen);
    const attrs: [string, AttrAst][] = [];
    this.OPTION2(() => {
      this.CONSUME(LBrace);
      this.MANY_SEP2({
        SEP: Comma,
        DEF: () => {
          const key = this.OR3([
            { ALT: () => this.CONSUME4(Identifier).image },
            { ALT: () => this.str(this.CONSUME(StringLit).image) },
          ]);
          this.CONSUME2(Equals);
          attrs.push([key, this.SUBRULE(this.attrValue)]);
        },
      });
      this.CONSUME(RBrace);
    });
    const types: TypeAst[] = [];
    this.OPTION3(() => {
      this.CONSUME(Colon);
      this.AT_LEAST_ONE_SEP2({ SEP: Comma, DEF: () => types.push(this.SUBRULE(this.type)) });
    });
    let loc = '';
    let overload = '';
    const meta: [string, string][] = [];
    // Only `overload(`, `loc(` and `meta {` continue this node: the next statement may start
    // with an identifier too (`_, %b = Op(…)`, or a node without results).
    this.MANY2({
      GATE: () => {
        const next = this.LA(1).image;
        const after = this.LA(2).tokenType;
        return ((next === 'loc' || next === 'overload') && after === LParen) || (next === 'meta' && after === LBrace);
      },
      DEF: () => {
        const clause = this.CONSUME5(Identifier).image;
        this.OR4([
          {
            ALT: () => {
              this.CONSUME2(LParen);
              const text = this.str(this.CONSUME2(StringLit).image);
              this.CONSUME2(RParen);
              if (clause === 'overload') overload = text;
              else loc = text;
            },
          },
          {
            ALT: () => {
              this.CONSUME2(LBrace);
              this.MANY_SEP3({
                SEP: Comma,
                DEF: () => {
                  const k = this.str(this.CONSUME3(StringLit).image);
                  this.CONSUME3(Equals);
                  meta.push([k, this.str(this.CONSUME4(StringLit).image)]);
                },
              });
              this.CONSUME2(RBrace);
            },
          },
        ]);
      },
    });
    return { results, op: opTok.image, args, attrs, types, loc, overload, meta, line: opTok.startLine ?? 0 };
  });

  type = this.RULE('type', (): TypeAst => {
    return this.OR([
      { ALT: () => (this.CONSUME(Question), { kind: 'unknown' as const }) },
      {
        ALT: () => {
          const dtype = this.CONSUME(Identifier).image;
          return this.OR2([
            {
              ALT: () => {
                this.CONSUME(LAngle);
                const summary = this.str(this.CONSUME(StringLit).image);
                this.CONSUME(RAngle);
                return { kind: 'opaque' as const, summary };
              },
            },
            {
              ALT: () => {
                this.CONSUME(LBracket);
                const shape = this.OR3([
                  { ALT: () => (this.CONSUME(Star), null) },
                  {
                    ALT: () => {
                      const dims: DimAst[] = [];
                      this.MANY_SEP({ SEP: Comma, DEF: () => dims.push(this.SUBRULE(this.dim)) });
                      return dims;
                    },
                  },
                ]);
                this.CONSUME(RBracket);
                return { kind: 'tensor' as const, dtype, shape };
              },
            },
          ]);
        },
      },
    ]);
  });

  dim = this.RULE('dim', (): DimAst => {
    return this.OR([
      { ALT: () => Number(this.CONSUME(IntLit).image) },
      { ALT: () => this.CONSUME(Identifier).image },
      { ALT: () => this.str(this.CONSUME(StringLit).image) },
      { ALT: () => (this.CONSUME(Question), null) },
    ]);
  });

  tensor = this.RULE('tensor', (): TensorAst => {
    this.keyword('tensor');
    return this.SUBRULE(this.tensorBody);
  });

  tensorBody = this.RULE('tensorBody', (): TensorAst => {
    this.CONSUME(LAngle);
    const type = this.SUBRULE(this.type);
    this.CONSUME(RAngle);
    const data = this.OR([
      {
        ALT: (): TensorDataAst => {
          this.CONSUME(LBracket);
          const nums: string[] = [];
          const strs: string[] = [];
          this.MANY_SEP({
            SEP: Comma,
            DEF: () =>
              this.OR2([
                { ALT: () => nums.push(this.SUBRULE(this.numberText)) },
                { ALT: () => strs.push(this.str(this.CONSUME(StringLit).image)) },
              ]),
          });
          this.CONSUME(RBracket);
          return strs.length ? { kind: 'strings', values: strs } : { kind: 'dense', values: nums };
        },
      },
      {
        ALT: (): TensorDataAst => {
          const kwTok = this.CONSUME2(Identifier);
          const kw = kwTok.image;
          this.ACTION(() => {
            if (kw !== 'external' && kw !== 'elided') {
              throw new TextSyntaxError(`expected "elided" or "external", found "${kw}"`, kwTok);
            }
          });
          this.CONSUME(LParen);
          const first = this.str(this.CONSUME2(StringLit).image);
          let offset = 0;
          let length = 0;
          this.OPTION(() => {
            this.CONSUME(Comma);
            offset = Number(this.CONSUME(IntLit).image);
            this.CONSUME2(Comma);
            length = Number(this.CONSUME2(IntLit).image);
          });
          this.CONSUME(RParen);
          return kw === 'external' ? { kind: 'external', location: first, offset, length } : { kind: 'elided', digest: first };
        },
      },
    ]);
    return { type, data };
  });

  numberText = this.RULE('numberText', (): string => {
    return this.OR([{ ALT: () => this.CONSUME(FloatLit).image }, { ALT: () => this.CONSUME(IntLit).image }]);
  });

  attrValue = this.RULE('attrValue', (): AttrAst => {
    return this.OR([
      { ALT: () => ({ kind: 'int' as const, value: Number(this.CONSUME(IntLit).image) }) },
      { ALT: () => ({ kind: 'float' as const, value: parseFloatToken(this.CONSUME(FloatLit).image) }) },
      { ALT: () => ({ kind: 'string' as const, value: this.str(this.CONSUME(StringLit).image) }) },
      { ALT: () => this.SUBRULE(this.listValue) },
      {
        // keyword-led values: tensor<…> […], opaque<"…">, ref("…": type), graph @g(…) -> (…) {…}, ints/floats/… […]
        ALT: () => {
          const kwTok = this.CONSUME(Identifier);
          const kw = kwTok.image;
          return this.OR2([
            {
              ALT: () => {
                this.CONSUME(LParen);
                const ref = this.str(this.CONSUME3(StringLit).image);
                this.CONSUME(Colon);
                const of = this.CONSUME2(Identifier).image;
                this.CONSUME(RParen);
                return this.ACTION(() => withToken(kwTok, () => expectKeyword(kw, 'ref', { kind: 'ref' as const, ref, of })));
              },
            },
            {
              GATE: () => this.LA(2).tokenType === StringLit,
              ALT: () => {
                this.CONSUME(LAngle);
                const summary = this.str(this.CONSUME2(StringLit).image);
                this.CONSUME(RAngle);
                return this.ACTION(() => withToken(kwTok, () => expectKeyword(kw, 'opaque', { kind: 'opaque' as const, summary })));
              },
            },
            {
              ALT: () => {
                const value = this.SUBRULE(this.tensorBody);
                return this.ACTION(() => withToken(kwTok, () => expectKeyword(kw, 'tensor', { kind: 'tensor' as const, value })));
              },
            },
            {
              ALT: () => {
                const value = this.SUBRULE(this.graphBody);
                return this.ACTION(() => withToken(kwTok, () => expectKeyword(kw, 'graph', { kind: 'graph' as const, value })));
              },
            },
            {
              ALT: () => {
                const list = this.SUBRULE2(this.listValue);
                return this.ACTION(() => withToken(kwTok, () => retypeList(kw, list)));
              },
            },
          ]);
        },
      },
    ]);
  });

  listValue = this.RULE('listValue', (): AttrAst => {
    const open = this.CONSUME(LBracket);
    const items: AttrAst[] = [];
    this.MANY_SEP({ SEP: Comma, DEF: () => items.push(this.SUBRULE(this.attrValue)) });
    this.CONSUME(RBracket);
    return this.ACTION(() => withToken(open, () => listFromItems(items)));
  });
}

/** An error found while building the AST, at a token (so the message can name its line and column). */
class TextSyntaxError extends Error {
  constructor(
    message: string,
    readonly token: IToken,
  ) {
    super(message);
  }
}

function withToken<T>(token: IToken, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof TextSyntaxError) throw e;
    throw new TextSyntaxError((e as Error).message, token);
  }
}

function expectKeyword<T>(found: string, expected: string, value: T): T {
  if (found !== expected) throw new Error(`expected "${expected}", found "${found}"`);
  return value;
}

export function parseFloatToken(s: string): number {
  if (s === 'inf') return Infinity;
  if (s === '-inf') return -Infinity;
  if (s === 'nan' || s === '-nan') return NaN;
  return Number(s);
}

function listFromItems(items: AttrAst[]): AttrAst {
  if (items.length === 0) return { kind: 'ints', value: [] };
  const kinds = new Set(items.map((i) => i.kind));
  if ([...kinds].every((k) => k === 'int')) return { kind: 'ints', value: items.map((i) => (i as { value: number }).value) };
  if ([...kinds].every((k) => k === 'int' || k === 'float')) {
    return { kind: 'floats', value: items.map((i) => (i as { value: number }).value) };
  }
  if (kinds.size === 1 && kinds.has('string')) return { kind: 'strings', value: items.map((i) => (i as { value: string }).value) };
  if (kinds.size === 1 && kinds.has('tensor')) return { kind: 'tensors', value: items.map((i) => (i as { value: TensorAst }).value) };
  if (kinds.size === 1 && kinds.has('graph')) return { kind: 'graphs', value: items.map((i) => (i as { value: GraphAst }).value) };
  throw new Error(`a list mixes ${[...kinds].join(' and ')} elements`);
}

function retypeList(kw: string, list: AttrAst): AttrAst {
  const empty = 'value' in list && Array.isArray(list.value) && list.value.length === 0;
  switch (kw) {
    case 'ints':
      return empty ? { kind: 'ints', value: [] } : list;
    case 'floats':
      return { kind: 'floats', value: empty ? [] : ((list as { value: number[] }).value ?? []) };
    case 'strings':
      return empty ? { kind: 'strings', value: [] } : list;
    case 'tensors':
      return empty ? { kind: 'tensors', value: [] } : list;
    case 'graphs':
      return empty ? { kind: 'graphs', value: [] } : list;
    default:
      throw new Error(`unknown list kind "${kw}"`);
  }
}

let parser: TextParser | undefined;

/** Parses textual IR into an AST; errors carry DELTAC_E_TEXT_SYNTAX with line and column. */
export function parseText(text: string, source = '<text>'): ModelAst {
  const lexed = textLexer.tokenize(text);
  if (lexed.errors.length) {
    const e = lexed.errors[0]!;
    throw new DeltacError('DELTAC_E_TEXT_SYNTAX', `${source}:${e.line}:${e.column}: ${e.message}`);
  }
  parser ??= new TextParser();
  parser.input = lexed.tokens;
  let ast: ModelAst;
  try {
    ast = parser.model();
  } catch (e) {
    if (e instanceof TextSyntaxError) {
      const t = e.token;
      throw new DeltacError('DELTAC_E_TEXT_SYNTAX', `${source}:${t.startLine ?? '?'}:${t.startColumn ?? '?'}: ${e.message}`);
    }
    throw new DeltacError('DELTAC_E_TEXT_SYNTAX', `${source}: ${(e as Error).message}`);
  }
  if (parser.errors.length) {
    const err = parser.errors[0]!;
    const t = err.token;
    // At the end of the input chevrotain's EOF token has no position: name the last line.
    const where = Number.isFinite(t.startLine) ? `${t.startLine}:${t.startColumn}` : `${text.split('\n').length}`;
    throw new DeltacError('DELTAC_E_TEXT_SYNTAX', `${source}:${where}: ${err.message}`);
  }
  return ast;
}
