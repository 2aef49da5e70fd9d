/** Tokens of deltac's textual IR (chevrotain lexer). */
import { Lexer, createToken } from 'chevrotain';

/** A plain name: word characters, `.`, `/`, `-` and `::` (single colons would clash with `: type`). */
const NAME_BODY = String.raw`(?:(?:[\w.\/\-]|::)+|"(?:[^"\\]|\\.)*")`;

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /\s+/, group: Lexer.SKIPPED });
export const Comment = createToken({ name: 'Comment', pattern: /\/\/[^\n]*/, group: Lexer.SKIPPED });
export const ValueRef = createToken({ name: 'ValueRef', pattern: new RegExp(`%${NAME_BODY}`) });
export const InitRef = createToken({ name: 'InitRef', pattern: new RegExp(`@${NAME_BODY}`) });
export const StringLit = createToken({ name: 'StringLit', pattern: /"(?:[^"\\]|\\.)*"/ });
export const FloatLit = createToken({
  name: 'FloatLit',
  pattern: /-?(?:\d+\.\d*(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|inf(?![\w.])|nan(?![\w.]))/,
});
export const IntLit = createToken({ name: 'IntLit', pattern: /-?\d+/ });
export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z_][\w.]*/ });
export const Arrow = createToken({ name: 'Arrow', pattern: /->/ });
export const LParen = createToken({ name: 'LParen', pattern: /\(/ });
export const RParen = createToken({ name: 'RParen', pattern: /\)/ });
export const LBrace = createToken({ name: 'LBrace', pattern: /\{/ });
export const RBrace = createToken({ name: 'RBrace', pattern: /\}/ });
export const LBracket = createToken({ name: 'LBracket', pattern: /\[/ });
export const RBracket = createToken({ name: 'RBracket', pattern: /\]/ });
export const LAngle = createToken({ name: 'LAngle', pattern: /</ });
export const RAngle = createToken({ name: 'RAngle', pattern: />/ });
export const Comma = createToken({ name: 'Comma', pattern: /,/ });
export const Equals = createToken({ name: 'Equals', pattern: /=/ });
export const Colon = createToken({ name: 'Colon', pattern: /:/ });
export const Question = createToken({ name: 'Question', pattern: /\?/ });
export const Star = createToken({ name: 'Star', pattern: /\*/ });

export const allTokens = [
  WhiteSpace,
  Comment,
  Arrow,
  ValueRef,
  InitRef,
  StringLit,
  FloatLit,
  IntLit,
  Identifier,
  LParen,
  RParen,
  LBrace,
  RBrace,
  LBracket,
  RBracket,
  LAngle,
  RAngle,
  Comma,
  Equals,
  Colon,
  Question,
  Star,
];

export const textLexer = new Lexer(allTokens, { positionTracking: 'full', ensureOptimizations: false });

/** The name inside a `%name`, `@name`, `%"quoted name"` token. */
export function refName(image: string): string {
  const body = image.slice(1);
  return body.startsWith('"') ? unquote(body) : body;
}

export function unquote(s: string): string {
  return JSON.parse(s) as string;
}
